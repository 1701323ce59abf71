package dev.tandem.cuda.backend;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;
import dev.tandem.cuda.CudaDriver;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Without the build's fatbin, NVRTC compiles the packaged kernel source at run time and the kernels compute the same. */
class CudaKernelsTest {
    @Test
    void nvrtcCompiledKernelsMatchTheBuildsFatbin() {
        String why = CudaDriver.unavailableReason();
        if (why != null) System.err.println("CudaKernelsTest skipped: no CUDA GPU here (" + why + "); it runs on the GPU machine");
        assumeTrue(why == null, "no CUDA GPU here (" + why + ")");
        float[] fatbin = rmsNorm(), nvrtc;
        System.setProperty("tandem.cuda.kernels", "nvrtc");
        try {
            nvrtc = rmsNorm();
        } finally {
            System.clearProperty("tandem.cuda.kernels");
        }
        assertArrayEquals(fatbin, nvrtc);
    }

    private static float[] rmsNorm() {
        int cols = 300;
        try (CudaBackend b = new CudaBackend(0, CudaBackend.Precision.F32); Arena arena = Arena.ofConfined()) {
            if ("nvrtc".equals(System.getProperty("tandem.cuda.kernels"))) assertTrue(b.name().contains("NVRTC"), b.name());
            MemorySegment row = arena.allocate(4L * cols), gamma = arena.allocate(4L * cols);
            for (int i = 0; i < cols; i++) {
                row.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) Math.sin(i));
                gamma.setAtIndex(ValueLayout.JAVA_FLOAT, i, 1 + i / 300f);
            }
            Activation x = b.allocate(1, cols), out = b.allocate(1, cols);
            b.embed(b.upload(new Tensor("x", DType.F32, new long[] {1, cols}, row)), new int[] {0}, x);
            b.rmsNorm(x, b.upload(new Tensor("g", DType.F32, new long[] {cols}, gamma)), 1e-5f, out);
            float[] r = new float[cols];
            b.read(out, 0, r);
            return r;
        }
    }
}
