package dev.tandem.core.quant;

import java.util.Arrays;

/**
 * Where every byte of a tensor compressed to FlexGen's group-wise 4-bit format ("GQ4") lives.
 *
 * <p>The tensor has shape {@code S} (row-major, last dimension contiguous) and is grouped along {@code S[g]}:
 * {@code outer = S[0] * ... * S[g-1]}, {@code len = S[g]}, {@code inner = S[g+1] * ... * S[n-1]}. The grouped
 * dimension is padded to {@code padded = ceil(len / 64) * 64}, so that every group has 64 elements:
 * group (o, k, i) holds the elements (o, 64k + j, i) for j in [0, 64). Weights [out, in] grouped along g = 0 have
 * groups of 64 consecutive output channels at one input column; a KV cache [tokens, heads, headDim] grouped along
 * g = 2 has a group per 64 of head_dim per (token, head).
 *
 * <p>The bytes are {@code outer} records, one after the other, of {@link #recordBytes()} bytes each; record o is
 * <pre>
 *   nibbles  padded * inner / 2 bytes: element (j, i) of the padded [padded, inner] block, e = j * inner + i,
 *            is in byte e / 2, the low nibble when e is even, the high nibble when odd
 *   mins     groups * inner fp16 (little-endian), min of group (k, i) at index k * inner + i
 *   scales   groups * inner fp16, same order
 * </pre>
 * and x' = fma(q, scale, min) in f32 (one rounding; the GPU kernel computes the very same). Records keep what
 * belongs together contiguous: a KV slot's heads are one run of bytes, so a block of slots copies in one piece.
 * Padding elements are excluded from min / max and stored as 0 (FlexGen pads with zeros and lets them into the
 * range; leaving them out only tightens it). The parameters are fp16, as FlexGen keeps them (in the model's
 * dtype): 4 bytes per 64 elements, 4.5 bits per element in all, against 5 with f32; the quantizer rounds min down
 * and scale up to fp16 so that every element still lies within the representable range and |x - x'| <= scale / 2.
 */
public record Gq4Layout(long[] shape, int groupDim) {
    /** Elements per group. */
    public static final int GROUP = 64;
    /** Largest quant: 4 bits. */
    public static final int LEVELS = 15;

    public Gq4Layout {
        shape = shape.clone();
        if (shape.length == 0) throw new IllegalArgumentException("GQ4: a tensor needs at least one dimension");
        if (groupDim < 0 || groupDim >= shape.length) {
            throw new IllegalArgumentException("GQ4: group dimension " + groupDim + " outside shape " + Arrays.toString(shape));
        }
        for (long d : shape) if (d <= 0) throw new IllegalArgumentException("GQ4: shape " + Arrays.toString(shape) + " has an empty dimension");
    }

    public static Gq4Layout of(int groupDim, long... shape) { return new Gq4Layout(shape, groupDim); }

    @Override
    public long[] shape() { return shape.clone(); }

    public long outer() { return product(0, groupDim); }

    public int len() { return (int) shape[groupDim]; }

    public long inner() { return product(groupDim + 1, shape.length); }

    /** The grouped dimension rounded up to whole groups. */
    public int padded() { return groups() * GROUP; }

    /** Groups along the grouped dimension (per outer index and inner index). */
    public int groups() { return (len() + GROUP - 1) / GROUP; }

    public long elements() { return product(0, shape.length); }

    /** Whether the groups run along the last dimension (the KV cache), so that a row is a record's first len elements. */
    public boolean groupedAlongRows() { return groupDim == shape.length - 1; }

    /** Length of the last (contiguous) dimension: the length of a row. */
    public int rowLength() { return (int) shape[shape.length - 1]; }

    /** Rows of the original tensor (every dimension but the last). */
    public long rows() { return elements() / rowLength(); }

    public long nibbleBytes() { return (long) padded() * inner() / 2; }

    /** Offset of the mins within a record. */
    public long minsOffset() { return nibbleBytes(); }

    /** Offset of the scales within a record. */
    public long scalesOffset() { return nibbleBytes() + 2L * groups() * inner(); }

    public long recordBytes() { return nibbleBytes() + 4L * groups() * inner(); }

    /** Bytes of the whole compressed tensor. */
    public long packedBytes() { return outer() * recordBytes(); }

    private long product(int from, int to) {
        long p = 1;
        for (int i = from; i < to; i++) p = Math.multiplyExact(p, shape[i]);
        return p;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Gq4Layout l && l.groupDim == groupDim && Arrays.equals(l.shape, shape);
    }

    @Override
    public int hashCode() { return 31 * Arrays.hashCode(shape) + groupDim; }

    @Override
    public String toString() { return "GQ4" + Arrays.toString(shape) + " grouped along dim " + groupDim; }
}
