package dev.tandem.offload.exec;

import dev.tandem.core.OptTestModels;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.OptShapes;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.cuda.CudaDriver;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.offload.policy.OffloadPolicy;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * OPT (FlexGen's own architecture) offloaded gives the in-memory engine's greedy tokens: on the CPU path under policies
 * with weights on disk, pipelined over 2 and 3 stages, and on the GPU (f32) with the cache in host memory and attention
 * on the CPU.
 */
class OptOffloadTest {
    /** head_dim 64: the shape class of FlexGen's OPT models (head_dim 128 at 30B), small enough for CI. */
    static final ModelConfig SMALL = ModelConfig.opt(256, 1024, 3, 4, 512, 128, 1e-5f, 0, 2);

    @TempDir
    Path tmp;

    private List<int[]> prompts() {
        List<int[]> p = new ArrayList<>();
        p.add(new int[] {0, 17, 42, 99, 7});
        p.add(new int[] {0, 300, 5});
        p.add(new int[] {0, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20});
        return p;
    }

    private void check(Backend backend, Backend reference, ModelConfig c, String name, String policy, boolean stacked) {
        check(backend, reference, c, name, policy, stacked, 1);
    }

    /** With {@code stages} > 1, a pipeline of that many CPU stages (sharing the backend, whose pool serialises them). */
    private void check(Backend backend, Backend reference, ModelConfig c, String name, String policy, boolean stacked, int stages) {
        try (Model model = ModelLoader.load(OptTestModels.folder(name, c, 3), null)) {
            List<int[]> want = new ArrayList<>();
            for (int[] p : prompts()) want.add(OptTestModels.greedy(reference, model, p, 20, 64));
            List<OffloadDevice> devices = new ArrayList<>();
            for (int i = 0; i < stages; i++) {
                devices.add(backend instanceof CudaBackend cuda ? new CudaOffloadDevice(cuda, 1L << 30, 1L << 30)
                        : new CpuOffloadDevice((CpuBackend) backend, 1L << 30));
            }
            try (DiskStore disk = new DiskStore(tmp, 1L << 30);
                 OffloadedGenerator g = new OffloadedGenerator(OptProgram.of(c, model.weights(), stacked), devices, null,
                         OffloadPolicy.parse(policy), disk, 8, -1)) {
                List<OffloadedGenerator.Request> reqs = new ArrayList<>();
                for (int[] p : prompts()) reqs.add(new OffloadedGenerator.Request(p, 20, SamplingParams.GREEDY));
                List<int[]> got = g.generate(reqs, null);
                for (int i = 0; i < want.size(); i++) {
                    assertArrayEquals(want.get(i), got.get(i), name + " prompt " + i + " policy " + policy + " stages " + stages);
                }
            } finally {
                devices.forEach(OffloadDevice::close);
            }
        }
    }

    @Test
    void cpuPipelineMatchesTheInMemoryEngine() {
        try (CpuBackend cpu = new CpuBackend(2)) {
            check(cpu, cpu, SMALL, "opt-small", "1 1 100 0 100 0 100 0", false, 2);
            check(cpu, cpu, SMALL, "opt-small", "1 2 0 50 0 100 0 100", false, 3);
        }
    }

    @Test
    void cpuPathMatchesTheInMemoryEngine() {
        try (CpuBackend cpu = new CpuBackend(2)) {
            for (String policy : new String[] {"3 1 100 0 100 0 100 0", "1 2 0 50 0 100 0 100", "2 2 0 0 0 100 0 100"}) {
                check(cpu, cpu, OptShapes.of("opt-tiny"), "opt-tiny", policy, false);
                check(cpu, cpu, SMALL, "opt-small", policy, false);
            }
        }
    }

    @Test
    void gpuPathMatchesTheInMemoryEngine() {
        String why = CudaDriver.unavailableReason();
        if (why != null) System.err.println("OptOffloadTest GPU case skipped: no CUDA GPU here (" + why + "); it runs on the GPU machine");
        assumeTrue(why == null, "no CUDA GPU here (" + why + ")");
        try (CpuBackend cpu = new CpuBackend(); CudaBackend cuda = new CudaBackend(0, CudaBackend.Precision.F32, false)) {
            for (String policy : new String[] {"3 1 100 0 100 0 100 0", "1 2 20 50 0 100 0 100 cpu-cache-compute", "2 2 0 100 0 100 0 100"}) {
                check(cuda, cpu, SMALL, "opt-small", policy, true);
            }
        }
    }
}
