package dev.tandem.core.quant;

import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Compresses f32 / f16 / bf16 values into the {@link Gq4Layout} format. Per group: min and max over its real
 * (unpadded) elements, min stored rounded down to fp16, scale = (max - min) / 15 rounded up to fp16 (FlexGen's
 * choice; {@link GroupQuant4.Range#MIN_MAX}), or parameters of less squared error found from there
 * ({@link Gq4RangeSearch}), and q = floor((x - min) / scale + 0.5) clamped to [0, 15] (q = 0 where the scale is 0:
 * a constant group). Scalar:
 * quantizing happens once per weight at load and once per token per layer for the KV cache, never per use.
 */
final class Gq4Quantizer {
    private Gq4Quantizer() {}

    /**
     * Quantizes the tensor at {@code src} (elements of {@code type}, row-major as {@code layout.shape()}) into
     * {@code dst} from byte {@code dstOff}, which must hold {@link Gq4Layout#packedBytes()}.
     */
    static void quantize(MemorySegment src, DType type, Gq4Layout layout, MemorySegment dst, long dstOff, GroupQuant4.Range range) {
        if (type != DType.F32 && type != DType.F16 && type != DType.BF16) {
            throw new IllegalArgumentException(layout + ": can only compress f32, f16 or bf16 values, not " + type);
        }
        long need = layout.elements() * (type == DType.F32 ? 4 : 2);
        if (src.byteSize() < need) throw new IllegalArgumentException(layout + ": source of " + src.byteSize() + " bytes, " + need + " needed");
        if (dstOff < 0 || dst.byteSize() - dstOff < layout.packedBytes()) {
            throw new IllegalArgumentException(layout + ": destination of " + (dst.byteSize() - dstOff) + " bytes from offset " + dstOff
                    + ", " + layout.packedBytes() + " needed");
        }
        int len = layout.len(), groups = layout.groups();
        long inner = layout.inner();
        if (Gq4Layout.GROUP * inner > Integer.MAX_VALUE) throw new IllegalArgumentException(layout + ": too wide to quantize");
        int in = (int) inner;
        float[] x = new float[Gq4Layout.GROUP * in];
        byte[] q = new byte[Gq4Layout.GROUP * in];
        // The weights' search is some twenty times min / max's work: its columns in parallel (the KV path stays on
        // the caller's thread: a few groups per token).
        boolean parallel = range == GroupQuant4.Range.LEAST_SQUARES && in >= 16;
        float[] g = new float[Gq4Layout.GROUP];
        int[] params = new int[in];
        for (long o = 0; o < layout.outer(); o++) {
            long rec = dstOff + o * layout.recordBytes();
            for (int k = 0; k < groups; k++) {
                int j0 = k * Gq4Layout.GROUP, rows = Math.min(Gq4Layout.GROUP, len - j0);
                Codec.decode(type, src, (o * len + j0) * inner, x, 0, rows * in);
                long oo = o;
                int kk = k;
                if (parallel) {
                    java.util.stream.IntStream.range(0, in).parallel()
                            .forEach(i -> params[i] = column(x, q, new float[Gq4Layout.GROUP], in, i, rows, layout, range, oo, kk));
                } else {
                    for (int i = 0; i < in; i++) params[i] = column(x, q, g, in, i, rows, layout, range, oo, kk);
                }
                for (int i = 0; i < in; i++) { // the caller's thread writes dst: it may be confined to it
                    long p = (long) k * in + i;
                    dst.set(Codec.I16, rec + layout.minsOffset() + 2 * p, Gq4RangeSearch.min16(params[i]));
                    dst.set(Codec.I16, rec + layout.scalesOffset() + 2 * p, Gq4RangeSearch.scale16(params[i]));
                }
                // 64 * inner elements per group row: always whole bytes.
                long b = rec + (long) j0 * in / 2;
                for (int e = 0; e < Gq4Layout.GROUP * in; e += 2) {
                    dst.set(ValueLayout.JAVA_BYTE, b + e / 2, (byte) (q[e] | q[e + 1] << 4));
                }
            }
        }
    }

    /** Column i of group row k (its rows real elements at x[j * in + i]): its codes into q, its (min, scale) returned packed. */
    private static int column(float[] x, byte[] q, float[] g, int in, int i, int rows, Gq4Layout layout, GroupQuant4.Range range,
                              long o, int k) {
        int j0 = k * Gq4Layout.GROUP;
        float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < rows; j++) {
            float v = x[j * in + i];
            if (!Float.isFinite(v)) throw new IllegalArgumentException(layout + ": value " + v + " at outer " + o + ", index " + (j0 + j) + ", inner " + i);
            min = Math.min(min, v);
            max = Math.max(max, v);
        }
        short mn16 = Fp16Rounding.down(min);
        float mn = Float.float16ToFloat(mn16);
        short sc16 = Fp16Rounding.up((max - mn) / Gq4Layout.LEVELS);
        float sc = Float.float16ToFloat(sc16);
        if (Float.isInfinite(mn) || Float.isInfinite(sc)) {
            throw new IllegalArgumentException(layout + ": group at outer " + o + ", index " + j0 + ", inner " + i
                    + " spans [" + min + ", " + max + "], beyond the fp16 range of GQ4's min and scale");
        }
        if (range != GroupQuant4.Range.MIN_MAX) {
            for (int j = 0; j < rows; j++) g[j] = x[j * in + i];
            int minMax = Gq4RangeSearch.pack(mn16, sc16);
            int chosen = range == GroupQuant4.Range.LEAST_SQUARES ? Gq4RangeSearch.search(g, rows, min, max, minMax)
                    : Gq4RangeSearch.refine(g, rows, minMax, Gq4RangeSearch.KV_REFITS);
            mn16 = Gq4RangeSearch.min16(chosen);
            sc16 = Gq4RangeSearch.scale16(chosen);
            mn = Float.float16ToFloat(mn16);
            sc = Float.float16ToFloat(sc16);
        }
        for (int j = 0; j < Gq4Layout.GROUP; j++) q[j * in + i] = j < rows ? quant(x[j * in + i], mn, sc) : 0;
        return Gq4RangeSearch.pack(mn16, sc16);
    }

    /** The 4-bit code of x in a group of the given min and scale. */
    static byte quant(float x, float min, float scale) {
        if (scale == 0f) return 0;
        float t = (float) Math.floor((x - min) / scale + 0.5f);
        return (byte) Math.max(0f, Math.min(Gq4Layout.LEVELS, t));
    }
}
