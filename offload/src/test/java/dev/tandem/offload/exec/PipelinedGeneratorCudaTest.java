package dev.tandem.offload.exec;

import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.cuda.CudaDriver;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.offload.policy.OffloadPolicy;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Pipeline parallelism on GPUs: two stages on cuda:0 and cuda:1 (each its own context, bound on its own thread, its own
 * weights, cache and copy stream), two blocks in flight, give the single-GPU run's greedy tokens under policies that keep
 * weights resident, stream them from pinned memory or disk, keep the cache on the GPU or the host (attention on the GPU
 * or the CPU), compressed or not, at f32 (where they are also HF's tokens) and bf16. The same stages on one GPU
 * (two backends sharing cuda:0) run on a one-GPU machine. Skips without CUDA; the two-GPU cases without two GPUs.
 */
class PipelinedGeneratorCudaTest {
    static final Path SHARED = GoldenPrompts.SHARED;
    static Model model;
    static int gpus;
    static GoldenPrompts goldenPrompts;
    static List<int[]> prompts, golden;

    @TempDir
    Path tmp;

    @BeforeAll
    static void load() throws Exception {
        String why = CudaDriver.unavailableReason();
        if (why != null) System.err.println("PipelinedGeneratorCudaTest skipped: no CUDA GPU here (" + why + "); it runs on the GPU machine");
        assumeTrue(why == null, "no CUDA GPU here (" + why + ")");
        gpus = CudaDriver.get().deviceCount();
        model = ModelLoader.load(SHARED.resolve("models/gutenberg-stories-llama-25m"), null);
        goldenPrompts = GoldenPrompts.load();
        prompts = goldenPrompts.prompts();
        golden = goldenPrompts.generated();
    }

    @AfterAll
    static void close() {
        if (model != null) model.close();
    }

    /** Greedy tokens of the golden prompts (twice each) with one stage per GPU in {@code stageGpus}. */
    private List<int[]> run(String policy, int[] stageGpus, CudaBackend.Precision precision, int tokens) {
        List<CudaBackend> backends = new ArrayList<>();
        List<OffloadDevice> devices = new ArrayList<>();
        try (DiskStore disk = new DiskStore(tmp, 1L << 30)) {
            for (int gpu : stageGpus) {
                CudaBackend b = new CudaBackend(gpu, precision, false);
                backends.add(b);
                devices.add(new CudaOffloadDevice(b, 1L << 30, 1L << 30));
            }
            try (OffloadedGenerator g = new OffloadedGenerator(new LlamaProgram(model.config(), model.weights(), true), devices, null,
                    OffloadPolicy.parse(policy), disk, 8, -1)) {
                List<int[]> out = g.generate(goldenPrompts.requests(2, tokens), null);
                assertEquals(stageGpus.length, g.lastStats().stages().size());
                return out;
            }
        } finally {
            devices.forEach(OffloadDevice::close);
            backends.forEach(CudaBackend::close);
        }
    }

    private void assertPipelineMatchesOneGpu(String policy, int[] stageGpus) {
        boolean f32 = !policy.contains("compress");
        for (CudaBackend.Precision p : f32 ? List.of(CudaBackend.Precision.F32, CudaBackend.Precision.BF16) : List.of(CudaBackend.Precision.F32)) {
            int tokens = 32;
            List<int[]> one = run(policy, new int[] {stageGpus[0]}, p, tokens), pipe = run(policy, stageGpus, p, tokens);
            for (int i = 0; i < one.size(); i++) {
                String what = "request " + i + " under " + policy + " at " + p + " on cuda:" + Arrays.toString(stageGpus);
                assertArrayEquals(one.get(i), pipe.get(i), what + ": pipeline vs one GPU");
                if (f32 && p == CudaBackend.Precision.F32) {
                    assertArrayEquals(Arrays.copyOf(golden.get(i % prompts.size()), tokens), pipe.get(i), what + ": pipeline vs HF");
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {
            "2 2 100 0 100 0 100 0",
            "1 2 0 100 50 50 100 0",
            "2 1 20 50 0 100 0 100 cpu-cache-compute",
            "1 1 0 100 0 100 0 100 compress-weight compress-cache cpu-cache-compute",
    })
    void twoGpusGiveTheOneGpuTokens(String policy) {
        assumeTrue(gpus >= 2, "a pipeline over two GPUs needs two, this machine has " + gpus);
        assertPipelineMatchesOneGpu(policy, new int[] {0, 1});
    }

    @ParameterizedTest
    @ValueSource(strings = {"2 1 0 100 0 100 0 100", "1 2 30 30 100 0 100 0"})
    void twoStagesOnOneGpuGiveTheOneStageTokens(String policy) {
        assertPipelineMatchesOneGpu(policy, new int[] {0, 0});
    }
}
