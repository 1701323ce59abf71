package dev.tandem.cuda.backend;

import dev.tandem.core.backend.cpu.BackendOpsContract;
import dev.tandem.cuda.CudaDriver;
import org.junit.jupiter.api.BeforeAll;

import java.util.List;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Every op of the CUDA backend against the scalar reference on awkward sizes (the contract the CPU backend meets):
 * relative error <= 1e-2 with bf16 storage, <= 1e-5 in f32. Skips, saying so, on machines without a GPU.
 */
class CudaBackendOpsTest extends BackendOpsContract {
    @BeforeAll
    void gpu() {
        String why = CudaDriver.unavailableReason();
        if (why != null) System.err.println("CudaBackendOpsTest skipped: no CUDA GPU here (" + why + "); it runs on the GPU machine");
        assumeTrue(why == null, "no CUDA GPU here (" + why + ")");
    }

    @Override
    protected List<Factory> factories() {
        return List.of(
                new Factory("cuda-bf16", () -> new CudaBackend(0, CudaBackend.Precision.BF16), 1e-2, false),
                new Factory("cuda-f32", () -> new CudaBackend(0, CudaBackend.Precision.F32)));
    }
}
