package dev.tandem.cuda.backend;

import dev.tandem.core.quant.GroupQuant4;
import dev.tandem.core.quant.Gq4Layout;
import dev.tandem.core.tensor.DType;
import dev.tandem.cuda.CudaDriver;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/**
 * GQ4 kernel speed on the GPU (a benchmark, not a test): an 8192 x 8192 weight (groups along out) and a KV cache of
 * 32768 tokens x 8 heads x 128 (groups along head_dim) decompressed to bf16, and the KV compressed from bf16; the
 * mean of 20 launches after 3 warm-ups, timed with device events. GB/s counts bytes read plus written.
 *
 * <pre>java ... dev.tandem.cuda.backend.CudaGq4Bench</pre>  (scripts/device/gpu-run.sh gq4)
 */
public final class CudaGq4Bench {
    public static void main(String[] args) {
        try (CudaBackend b = new CudaBackend(0, CudaBackend.Precision.BF16); Arena arena = Arena.ofConfined()) {
            CudaDriver cuda = b.driver();
            System.out.println("GQ4 on " + b.name());
            run(b, cuda, arena, "weight 8192x8192, groups along out", Gq4Layout.of(0, 8192, 8192));
            run(b, cuda, arena, "KV 32768x8x128, groups along hd", Gq4Layout.of(2, 32768, 8, 128));
        }
    }

    private static void run(CudaBackend b, CudaDriver cuda, Arena arena, String name, Gq4Layout l) {
        long n = l.elements();
        MemorySegment src = arena.allocate(4 * n, 64);
        SplittableRandom rnd = new SplittableRandom(1);
        for (long i = 0; i < n; i++) src.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble(-1, 1));
        MemorySegment packed = arena.allocate(l.packedBytes(), 64);
        GroupQuant4.quantize(src, DType.F32, l, packed, 0);
        long dPacked = cuda.malloc(l.packedBytes()), dOut = cuda.malloc(2 * n);
        try {
            cuda.copyToDevice(dPacked, packed, l.packedBytes());
            CudaGq4 gq4 = new CudaGq4(b);
            int reps = 20;
            for (int i = 0; i < 3; i++) gq4.dequantize(dPacked, l, dOut, DType.BF16);
            b.sync();
            float ms = cuda.time(() -> {
                for (int i = 0; i < reps; i++) gq4.dequantize(dPacked, l, dOut, DType.BF16);
            }) / reps;
            System.out.printf("%-36s dequantize to bf16 %8.3f ms  %7.0f GB/s  (%.1f GElem/s)%n", name, ms,
                    (l.packedBytes() + 2.0 * n) / ms / 1e6, n / ms / 1e6);
            if (l.inner() == 1) {
                for (int i = 0; i < 3; i++) gq4.quantize(dOut, DType.BF16, l, dPacked);
                b.sync();
                float qms = cuda.time(() -> {
                    for (int i = 0; i < reps; i++) gq4.quantize(dOut, DType.BF16, l, dPacked);
                }) / reps;
                System.out.printf("%-36s quantize from bf16 %8.3f ms  %7.0f GB/s%n", name, qms, (l.packedBytes() + 2.0 * n) / qms / 1e6);
            }
        } finally {
            cuda.free(dPacked);
            cuda.free(dOut);
        }
    }
}
