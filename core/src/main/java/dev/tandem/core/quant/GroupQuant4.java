package dev.tandem.core.quant;

import dev.tandem.core.tensor.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * FlexGen's group-wise 4-bit compression (group 64, asymmetric; each group's range by min / max or by least
 * squares: {@link Range}), for weights (grouped along the output channel: {@code groupDim = 0} of [out, in]) and
 * the KV cache (grouped along head_dim: the last dimension). The byte layout is {@link Gq4Layout}'s; the CUDA
 * module's dequantize kernel reads the same bytes and gives the same bits. Usage:
 * <pre>
 *   Packed p = GroupQuant4.quantize(src, DType.BF16, 0, arena, out, in);   // a weight, grouped along out
 *   GroupQuant4.dequantizeRows(p, 0, out, dst, 0, DType.BF16);              // back to bf16 rows
 * </pre>
 */
public final class GroupQuant4 {
    private GroupQuant4() {}

    /** A compressed tensor: its layout and its {@link Gq4Layout#packedBytes()} bytes. */
    public record Packed(Gq4Layout layout, MemorySegment data) {
        public Packed {
            if (data.byteSize() != layout.packedBytes()) {
                throw new IllegalArgumentException(layout + " needs " + layout.packedBytes() + " bytes, got " + data.byteSize());
            }
        }
    }

    /**
     * How a group's (min, scale) is chosen; the format, and so the kernels that decompress it, are the same.
     * MIN_MAX is FlexGen's: the group's min and max, every element within half a scale. REFIT: from min / max, a few
     * least-squares refits of the scale and offset (cheap: the KV cache's, on the CPU and in the CUDA kernel alike).
     * LEAST_SQUARES: those refits from a grid of clipped ranges, the least squared error (weights, quantized once).
     * {@link Gq4RangeSearch} has the details.
     */
    public enum Range { MIN_MAX, REFIT, LEAST_SQUARES }

    /** Bytes of a tensor of this shape compressed along {@code groupDim}. */
    public static long packedBytes(int groupDim, long... shape) { return Gq4Layout.of(groupDim, shape).packedBytes(); }

    /** Compresses {@code src} (f32, f16 or bf16, row-major of {@code shape}) along {@code groupDim} into memory of {@code arena}. */
    public static Packed quantize(MemorySegment src, DType type, int groupDim, Arena arena, long... shape) {
        return quantize(src, type, groupDim, Range.MIN_MAX, arena, shape);
    }

    /** As {@link #quantize(MemorySegment, DType, int, Arena, long...)} with the given choice of each group's range. */
    public static Packed quantize(MemorySegment src, DType type, int groupDim, Range range, Arena arena, long... shape) {
        Gq4Layout l = Gq4Layout.of(groupDim, shape);
        MemorySegment dst = arena.allocate(l.packedBytes(), 64);
        Gq4Quantizer.quantize(src, type, l, dst, 0, range);
        return new Packed(l, dst);
    }

    /** Compresses {@code src} into {@code dst} from byte {@code dstOff} (memory the caller owns: pinned, a KV slot), min / max. */
    public static void quantize(MemorySegment src, DType type, Gq4Layout layout, MemorySegment dst, long dstOff) {
        Gq4Quantizer.quantize(src, type, layout, dst, dstOff, Range.MIN_MAX);
    }

    /** How KV cache rows choose their range, on every backend (the CUDA quantize kernel implements this one). */
    public static final Range KV_RANGE = Range.REFIT;

    /** As {@link #quantize(MemorySegment, DType, Gq4Layout, MemorySegment, long)} with the given choice of range. */
    public static void quantize(MemorySegment src, DType type, Gq4Layout layout, MemorySegment dst, long dstOff, Range range) {
        Gq4Quantizer.quantize(src, type, layout, dst, dstOff, range);
    }

    /**
     * Decompresses rows [first, first + count) of the tensor (a row: the last dimension, unpadded) into {@code dst}
     * from byte {@code dstOff}, rows one after the other, as f32 or bf16.
     */
    public static void dequantizeRows(Packed p, long first, int count, MemorySegment dst, long dstOff, DType type) {
        Gq4Dequantizer.rows(p.data(), 0, p.layout(), first, count, dst, dstOff, type);
    }

    /** As {@link #dequantizeRows(Packed, long, int, MemorySegment, long, DType)} for packed bytes at {@code data[base]}. */
    public static void dequantizeRows(MemorySegment data, long base, Gq4Layout layout, long first, int count,
                                      MemorySegment dst, long dstOff, DType type) {
        Gq4Dequantizer.rows(data, base, layout, first, count, dst, dstOff, type);
    }

    /** The whole tensor as f32 (tests, small tensors). */
    public static float[] dequantize(Packed p) {
        long n = p.layout().elements();
        if (n > Integer.MAX_VALUE) throw new IllegalArgumentException(p.layout() + ": too large for an array");
        float[] out = new float[(int) n];
        dequantizeRows(p, 0, (int) p.layout().rows(), MemorySegment.ofArray(out), 0, DType.F32);
        return out;
    }
}
