package dev.tandem.cuda;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The FFM bindings on a real GPU: NVRTC-compiled kernel, launch, copies, events, errors. Skips without CUDA. */
class CudaDriverTest {
    static CudaDriver cuda;

    @BeforeAll
    static void gpu() {
        String why = CudaDriver.unavailableReason();
        if (why != null) System.err.println("CudaDriverTest skipped: no CUDA GPU here (" + why + "); these tests run on the GPU machine");
        assumeTrue(why == null, "skipped: no CUDA GPU here (" + why + "); these tests run on the GPU machine");
        cuda = CudaDriver.get();
        cuda.usePrimaryContext(cuda.device(0));
    }

    static final String SAXPY = """
            extern "C" __global__ void saxpy(float a, const float* x, float* y, int n) {
                int i = blockIdx.x * blockDim.x + threadIdx.x;
                if (i < n) y[i] = a * x[i] + y[i];
            }
            """;

    @Test
    void anNvrtcKernelComputesWhatTheCpuComputes() {
        int major = cuda.deviceAttribute(75, 0), minor = cuda.deviceAttribute(76, 0);
        byte[] ptx = Nvrtc.get().compileToPtx("saxpy.cu", SAXPY, "--gpu-architecture=compute_" + major + minor);
        MemorySegment module = cuda.loadModule(ptx);
        MemorySegment saxpy = cuda.function(module, "saxpy");
        int n = 1_000_003; // not a multiple of the block size
        Random r = new Random(7);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment x = a.allocate(4L * n), y = a.allocate(4L * n), out = a.allocate(4L * n);
            for (int i = 0; i < n; i++) {
                x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) r.nextGaussian());
                y.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) r.nextGaussian());
            }
            long dx = cuda.malloc(4L * n), dy = cuda.malloc(4L * n);
            try {
                cuda.copyToDevice(dx, x, 4L * n);
                cuda.copyToDevice(dy, y, 4L * n);
                float ms = cuda.time(() -> cuda.launch(saxpy, (n + 255) / 256, 1, 1, 256, 1, 1, 0, null, 2.5f, dx, dy, n));
                cuda.synchronize();
                cuda.copyToHost(out, dy, 4L * n);
                for (int i = 0; i < n; i++) {
                    float want = 2.5f * x.getAtIndex(ValueLayout.JAVA_FLOAT, i) + y.getAtIndex(ValueLayout.JAVA_FLOAT, i);
                    assertEquals(want, out.getAtIndex(ValueLayout.JAVA_FLOAT, i), 1e-6f * Math.max(1, Math.abs(want)), "element " + i);
                }
                assertTrue(ms > 0, "event timing " + ms);
                System.out.printf("%s (sm_%d%d), driver %d, NVRTC %d: saxpy of %d floats in %.3f ms%n", cuda.deviceName(0), major, minor,
                        cuda.driverVersion(), Nvrtc.get().version(), n, ms);
            } finally {
                cuda.free(dx);
                cuda.free(dy);
                cuda.unloadModule(module);
            }
        }
    }

    @Test
    void failuresNameTheCallAndTheDriversReason() {
        CudaException e = assertThrows(CudaException.class, () -> cuda.malloc(1L << 50));
        assertTrue(e.getMessage().startsWith("cuMemAlloc(") && e.getMessage().contains("out of memory"), e.getMessage());
        CudaException c = assertThrows(CudaException.class, () -> Nvrtc.get().compileToPtx("bad.cu", "__global__ void k() { undeclared(); }"));
        assertTrue(c.getMessage().contains("nvrtcCompileProgram(bad.cu)") && c.getMessage().contains("undeclared"), c.getMessage());
    }
}
