package dev.tandem.cuda.backend;

import dev.tandem.core.quant.Gq4Layout;
import dev.tandem.core.tensor.DType;

/**
 * GQ4 (FlexGen's 4-bit group-wise format, {@link Gq4Layout}) on the GPU, on a {@link CudaBackend}'s stream: the
 * offload executor keeps compressed weights and KV blocks in host memory, copies the compressed bytes to the device
 * and decompresses them there ({@link #dequantize}), and compresses KV rows computed on the device before storing
 * them back ({@link #quantize}). The kernels give the same bits as the CPU's
 * {@link dev.tandem.core.quant.GroupQuant4} (CudaGq4Test checks both directions).
 *
 * <p>Arguments are device pointers; {@code packed} holds {@link Gq4Layout#packedBytes()} bytes, the unpacked side
 * the tensor's elements row-major. Launches are asynchronous on the backend's stream.
 */
public final class CudaGq4 {
    private static final int THREADS = 256;
    private final CudaBackend backend;

    public CudaGq4(CudaBackend backend) { this.backend = backend; }

    /** The whole tensor at {@code packed} decompressed to {@code type} (bf16 or f32) at {@code dst}. */
    public void dequantize(long packed, Gq4Layout l, long dst, DType type) {
        String suffix = switch (type) {
            case BF16 -> "bf16";
            case F32 -> "f32";
            default -> throw new IllegalArgumentException(l + ": the GPU decompresses to bf16 or f32, not " + type);
        };
        if (l.inner() == 1) {
            long n = l.elements();
            backend.launchOnStream("tdm_gq4_dequant_rows_" + suffix, grid(n), 1, THREADS, packed, dst, l.recordBytes(), l.minsOffset(),
                    l.scalesOffset(), l.len(), n);
        } else {
            long rows = l.outer() * l.len();
            if (rows > Integer.MAX_VALUE || l.inner() > Integer.MAX_VALUE) throw new IllegalArgumentException(l + ": too large for one launch");
            backend.launchOnStream("tdm_gq4_dequant_cols_" + suffix, (int) rows, 1, (int) Math.min(THREADS, ceil32(l.inner())), packed, dst,
                    l.recordBytes(), l.minsOffset(), l.scalesOffset(), l.len(), (int) l.inner());
        }
    }

    /**
     * Compresses {@code src} (bf16 or f32, row-major) into {@code packed}, each group's range chosen as
     * {@link dev.tandem.core.quant.GroupQuant4#KV_RANGE} (min / max, then a few least-squares refits). Only tensors
     * grouped along their last dimension (the KV cache's head_dim); weights are compressed once on the host.
     */
    public void quantize(long src, DType type, Gq4Layout l, long packed) {
        if (l.inner() != 1) throw new IllegalArgumentException(l + ": the GPU compresses tensors grouped along their last dimension only");
        String suffix = switch (type) {
            case BF16 -> "bf16";
            case F32 -> "f32";
            default -> throw new IllegalArgumentException(l + ": the GPU compresses bf16 or f32, not " + type);
        };
        long n = l.outer() * l.groups();
        backend.launchOnStream("tdm_gq4_quant_rows_" + suffix, grid(n), 1, THREADS, src, packed, l.recordBytes(), l.minsOffset(),
                l.scalesOffset(), l.len(), l.groups(), n);
    }

    /**
     * {@code sequences} runs of the KV layout {@code perSequence} (grouped along rows: a sequence's slots x heads x
     * head_dim), packed one after the other at {@code packed}, decompressed to run s at {@code dst + s * dstStride}
     * elements: a GPU batch's cache layer, whose sequences sit {@code dstStride} elements apart, in one launch.
     */
    public void dequantizeSequences(long packed, Gq4Layout perSequence, int sequences, long dst, long dstStride, DType type) {
        Gq4Layout l = rowsLayout(perSequence);
        long perSeq = l.elements(), n = perSeq * sequences;
        backend.launchOnStream("tdm_gq4_dequant_seqs_" + suffix(type, l), grid(n), 1, THREADS, packed, dst, l.recordBytes(), l.minsOffset(),
                l.scalesOffset(), l.len(), n, perSeq, dstStride);
    }

    /** The inverse of {@link #dequantizeSequences}: run s read from {@code src + s * srcStride} elements, packed one after the other. */
    public void quantizeSequences(long src, long srcStride, DType type, Gq4Layout perSequence, int sequences, long packed) {
        Gq4Layout l = rowsLayout(perSequence);
        long n = l.outer() * l.groups() * sequences;
        backend.launchOnStream("tdm_gq4_quant_seqs_" + suffix(type, l), grid(n), 1, THREADS, src, packed, l.recordBytes(), l.minsOffset(),
                l.scalesOffset(), l.len(), l.groups(), n, l.outer(), srcStride);
    }

    private static Gq4Layout rowsLayout(Gq4Layout l) {
        if (l.inner() != 1) throw new IllegalArgumentException(l + ": sequences of a KV layout must be grouped along their last dimension");
        return l;
    }

    private static String suffix(DType type, Gq4Layout l) {
        return switch (type) {
            case BF16 -> "bf16";
            case F32 -> "f32";
            default -> throw new IllegalArgumentException(l + ": the GPU (de)compresses bf16 or f32, not " + type);
        };
    }

    private static int grid(long n) { return (int) Math.max(1, Math.min(Math.ceilDiv(n, THREADS), 65535L * 16)); }

    private static long ceil32(long n) { return (n + 31) / 32 * 32; }
}
