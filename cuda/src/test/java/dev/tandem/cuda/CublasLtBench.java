package dev.tandem.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

/**
 * bf16 GEMM throughput through Tandem's cuBLASLt binding (a benchmark, not a test): the mean over
 * 20 products after 3 warm-ups, timed with device events. Usage: CublasLtBench [M N K].
 */
public final class CublasLtBench {
    public static void main(String[] args) {
        int m = args.length > 0 ? Integer.parseInt(args[0]) : 8192, n = args.length > 1 ? Integer.parseInt(args[1]) : 8192,
                k = args.length > 2 ? Integer.parseInt(args[2]) : 8192;
        CudaDriver cuda = CudaDriver.get();
        cuda.usePrimaryContext(cuda.device(0));
        try (Arena a = Arena.ofConfined(); CublasLt blas = new CublasLt(cuda)) {
            long w = random(cuda, a, (long) m * k), x = random(cuda, a, (long) n * k), out = cuda.malloc(2L * m * n);
            for (int i = 0; i < 3; i++) blas.matmul(w, CublasLt.R_16BF, x, CublasLt.R_16BF, out, CublasLt.R_16BF, n, m, k);
            cuda.synchronize();
            int reps = 20;
            float ms = cuda.time(() -> {
                for (int i = 0; i < reps; i++) blas.matmul(w, CublasLt.R_16BF, x, CublasLt.R_16BF, out, CublasLt.R_16BF, n, m, k);
            });
            System.out.printf("cuBLASLt bf16 %dx%dx%d on %s: %.3f ms per product, %.0f TFLOP/s%n", m, n, k, cuda.deviceName(0),
                    ms / reps, 2.0 * m * n * k * reps / (ms / 1e3) / 1e12);
            cuda.free(w);
            cuda.free(x);
            cuda.free(out);
        }
    }

    /** Random bf16 values (a cheap generator: the benchmark must not run on zeros). */
    private static long random(CudaDriver cuda, Arena a, long count) {
        MemorySegment s = a.allocate(2 * count);
        Random r = new Random(count);
        for (long i = 0; i < count; i++) s.setAtIndex(ValueLayout.JAVA_SHORT, i, (short) (0x3c00 | (r.nextInt() & 0x83ff)));
        long d = cuda.malloc(2 * count);
        cuda.copyToDevice(d, s, 2 * count);
        return d;
    }
}
