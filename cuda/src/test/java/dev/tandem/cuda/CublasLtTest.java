package dev.tandem.cuda;

import dev.tandem.core.tensor.Halfs;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** cuBLASLt through FFM in Tandem's row-major convention, against a float64 CPU product. Skips without CUDA. */
class CublasLtTest {
    static CudaDriver cuda;

    @BeforeAll
    static void gpu() {
        String why = CudaDriver.unavailableReason();
        if (why != null) System.err.println("CublasLtTest skipped: no CUDA GPU here (" + why + "); these tests run on the GPU machine");
        assumeTrue(why == null, "no CUDA GPU");
        cuda = CudaDriver.get();
        cuda.usePrimaryContext(cuda.device(0));
    }

    /** Uploads n random bf16 values; returns the device pointer and fills host with their exact float values. */
    static long randomBf16(Arena a, float[] host, Random r) {
        MemorySegment s = a.allocate(2L * host.length);
        for (int i = 0; i < host.length; i++) {
            short b = Halfs.floatToBf16((float) r.nextGaussian());
            s.setAtIndex(ValueLayout.JAVA_SHORT, i, b);
            host[i] = Halfs.bf16ToFloat(b);
        }
        long d = cuda.malloc(2L * host.length);
        cuda.copyToDevice(d, s, 2L * host.length);
        return d;
    }

    @Test
    void bf16ProductWithF32AccumulationMatchesFloat64() {
        Random r = new Random(11);
        try (Arena a = Arena.ofConfined(); CublasLt blas = new CublasLt(cuda)) {
            for (int[] shape : new int[][] {{1, 448, 448}, {7, 1216, 448}, {37, 8192, 448}, {130, 200, 96}}) {
                int n = shape[0], rows = shape[1], cols = shape[2];
                float[] w = new float[rows * cols], x = new float[n * cols];
                long dw = randomBf16(a, w, r), dx = randomBf16(a, x, r), dout = cuda.malloc(4L * n * rows);
                try {
                    cuda.memset(dout, (byte) 0x7f, 4L * n * rows); // poison: every element must be written
                    blas.matmul(dw, CublasLt.R_16BF, dx, CublasLt.R_16BF, dout, CublasLt.R_32F, n, rows, cols);
                    cuda.synchronize();
                    MemorySegment out = a.allocate(4L * n * rows);
                    cuda.copyToHost(out, dout, 4L * n * rows);
                    double num = 0, den = 0;
                    for (int t = 0; t < n; t++) {
                        for (int o = 0; o < rows; o++) {
                            double ref = 0;
                            for (int c = 0; c < cols; c++) ref += (double) w[o * cols + c] * x[t * cols + c];
                            double got = out.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * rows + o);
                            num += (got - ref) * (got - ref);
                            den += ref * ref;
                        }
                    }
                    double rel = Math.sqrt(num / den);
                    assertTrue(rel <= 1e-5, n + "x" + cols + " by " + rows + "x" + cols + ": relative error " + rel);
                } finally {
                    cuda.free(dw);
                    cuda.free(dx);
                    cuda.free(dout);
                }
            }
        }
    }
}
