package dev.tandem.core.quant;

import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Decompresses rows (the last dimension) of a {@link Gq4Layout} tensor into f32 or bf16 with the Vector API:
 * a vector of L nibbles comes from one L/2-byte load broadcast over the int lanes, shifted per lane and masked,
 * then x = fma(q, scale, min), one rounding, so the result is bit for bit the scalar {@code Math.fma} and the
 * CUDA kernel's {@code __fmaf_rn}. bf16 is that f32 rounded to nearest even.
 *
 * <p>Two row shapes: grouped along the row (the KV cache: one min and scale per 64 elements, broadcast), or
 * grouped across rows (weights [out, in] grouped along out: a min and scale per column, shared by 64 rows,
 * converted to f32 once per 64 rows).
 */
final class Gq4Dequantizer {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED.length() >= 16
            ? FloatVector.SPECIES_512 : FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = F.withLanes(int.class);
    private static final VectorSpecies<Short> S = F.length() == 16 ? ShortVector.SPECIES_256 : ShortVector.SPECIES_128;
    private static final int L = F.length();
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(LE);
    /** Lane l takes nibble l: bits 4 * (l % 8) of the (l / 8)-th int of the loaded bytes. */
    private static final IntVector SHIFTS = IntVector.fromArray(I, new int[] {0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28}, 0);
    private static final VectorMask<Integer> HIGH_WORD = VectorMask.fromLong(I, L == 16 ? 0xff00L : 0L);

    private Gq4Dequantizer() {}

    /** Per-call scratch: the current group row's mins and scales as f32 (weights). */
    private static final class Params {
        long key = -1;
        float[] min = new float[0], scale = new float[0];
    }

    /**
     * Rows [first, first + count) of the tensor whose packed bytes start at {@code data[base]}, written one after
     * the other from {@code dst[dstOff]} as f32 or bf16 (little-endian).
     */
    static void rows(MemorySegment data, long base, Gq4Layout l, long first, int count, MemorySegment dst, long dstOff, DType type) {
        if (type != DType.F32 && type != DType.BF16) throw new IllegalArgumentException(l + ": decompresses to f32 or bf16, not " + type);
        if (first < 0 || count < 0 || first + count > l.rows()) {
            throw new IllegalArgumentException(l + ": rows [" + first + ", " + (first + count) + ") outside its " + l.rows() + " rows");
        }
        if (data.byteSize() - base < l.packedBytes()) throw new IllegalArgumentException(l + ": " + (data.byteSize() - base) + " packed bytes, " + l.packedBytes() + " needed");
        int n = l.rowLength(), esize = type == DType.F32 ? 4 : 2;
        if (dst.byteSize() - dstOff < (long) count * n * esize) throw new IllegalArgumentException(l + ": destination too small for " + count + " rows");
        boolean bf16 = type == DType.BF16;
        long rec = l.recordBytes();
        if (l.groupedAlongRows()) {
            for (int r = 0; r < count; r++) {
                alongRow(data, base + (first + r) * rec, l, n, dst, dstOff + (long) r * n * esize, bf16);
            }
            return;
        }
        long inner = l.inner(), innerRows = inner / n, len = l.len();
        Params p = new Params();
        for (int r = 0; r < count; r++) {
            long row = first + r, o = row / (len * innerRows), rem = row % (len * innerRows), j = rem / innerRows, ir = rem % innerRows;
            long recBase = base + o * rec, param = (j / Gq4Layout.GROUP) * inner + ir * n;
            long key = o * (inner * l.groups()) + param;
            if (p.key != key) load(data, recBase, l, param, n, p, key);
            long e = j * inner + ir * n;
            acrossRows(data, recBase, e, n, p, dst, dstOff + (long) r * n * esize, bf16);
        }
    }

    private static void load(MemorySegment data, long recBase, Gq4Layout l, long param, int n, Params p, long key) {
        if (p.min.length < n) {
            p.min = new float[n];
            p.scale = new float[n];
        }
        for (int c = 0; c < n; c++) {
            p.min[c] = Float.float16ToFloat(data.get(Codec.I16, recBase + l.minsOffset() + 2 * (param + c)));
            p.scale[c] = Float.float16ToFloat(data.get(Codec.I16, recBase + l.scalesOffset() + 2 * (param + c)));
        }
        p.key = key;
    }

    /** One record's first n elements (the row), a min and scale per 64. */
    private static void alongRow(MemorySegment data, long rec, Gq4Layout l, int n, MemorySegment dst, long out, boolean bf16) {
        int esize = bf16 ? 2 : 4;
        for (int k = 0; k * Gq4Layout.GROUP < n; k++) {
            float mn = Float.float16ToFloat(data.get(Codec.I16, rec + l.minsOffset() + 2L * k));
            float sc = Float.float16ToFloat(data.get(Codec.I16, rec + l.scalesOffset() + 2L * k));
            FloatVector mnV = FloatVector.broadcast(F, mn), scV = FloatVector.broadcast(F, sc);
            int c0 = k * Gq4Layout.GROUP, c1 = Math.min(n, c0 + Gq4Layout.GROUP), c = c0;
            for (; c + L <= c1; c += L) {
                store(nibbles(data, rec + c / 2).fma(scV, mnV), dst, out + (long) c * esize, bf16);
            }
            for (; c < c1; c++) put(dst, out + (long) c * esize, Math.fma(nibble(data, rec, c), sc, mn), bf16);
        }
    }

    /** n elements from element e of the record (e = the row's first), a min and scale per element in p. */
    private static void acrossRows(MemorySegment data, long rec, long e, int n, Params p, MemorySegment dst, long out, boolean bf16) {
        int esize = bf16 ? 2 : 4, c = 0;
        if ((e & 1) == 0) {
            for (; c + L <= n; c += L) {
                FloatVector v = nibbles(data, rec + (e + c) / 2).fma(FloatVector.fromArray(F, p.scale, c), FloatVector.fromArray(F, p.min, c));
                store(v, dst, out + (long) c * esize, bf16);
            }
        }
        for (; c < n; c++) put(dst, out + (long) c * esize, Math.fma(nibble(data, rec, e + c), p.scale[c], p.min[c]), bf16);
    }

    /** L nibbles from byte b on (element 2 (b - rec) first, low nibble first), as floats. */
    private static FloatVector nibbles(MemorySegment data, long b) {
        IntVector w;
        if (L == 16) {
            long bits = data.get(I64, b);
            w = IntVector.broadcast(I, (int) bits).blend((int) (bits >>> 32), HIGH_WORD);
        } else {
            w = IntVector.broadcast(I, data.get(I32, b));
        }
        return (FloatVector) w.lanewise(VectorOperators.LSHR, SHIFTS).and(0xf).convert(VectorOperators.I2F, 0);
    }

    static float nibble(MemorySegment data, long rec, long e) {
        int b = data.get(ValueLayout.JAVA_BYTE, rec + e / 2) & 0xff;
        return (e & 1) == 0 ? b & 0xf : b >>> 4;
    }

    private static void store(FloatVector v, MemorySegment dst, long off, boolean bf16) {
        if (!bf16) {
            v.intoMemorySegment(dst, off, LE);
            return;
        }
        IntVector bits = v.reinterpretAsInts();
        IntVector rounded = bits.add(bits.lanewise(VectorOperators.LSHR, 16).and(1)).add(0x7fff).lanewise(VectorOperators.LSHR, 16);
        ((ShortVector) rounded.convertShape(VectorOperators.I2S, S, 0)).intoMemorySegment(dst, off, LE);
    }

    private static void put(MemorySegment dst, long off, float v, boolean bf16) {
        if (bf16) dst.set(Codec.I16, off, dev.tandem.core.tensor.Halfs.floatToBf16(v));
        else dst.set(Codec.F32, off, v);
    }
}
