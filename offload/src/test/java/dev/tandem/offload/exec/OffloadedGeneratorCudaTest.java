package dev.tandem.offload.exec;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.cuda.CudaDriver;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.offload.policy.OffloadPolicy;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Offloaded generation on the GPU (f32 precision, so that the reference is HF's f32 greedy output): weights resident,
 * streamed from pinned memory or read from disk, the KV cache on the GPU or in host memory with attention on the GPU
 * or the CPU, give HF's greedy tokens for the 25m model.
 */
class OffloadedGeneratorCudaTest {
    static final Path SHARED = Path.of(System.getProperty("tandem.shared", "../../shared"));

    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {
            "8 1 100 0 100 0 100 0",
            "2 3 0 100 0 100 0 100",
            "3 2 20 50 0 100 0 100 cpu-cache-compute",
            "4 2 0 100 50 50 100 0",
            "2 2 0 0 0 100 0 100 cpu-cache-compute",
    })
    void greedyTokensMatchHuggingFace(String policy) throws Exception {
        String why = CudaDriver.unavailableReason();
        if (why != null) System.err.println("OffloadedGeneratorCudaTest skipped: no CUDA GPU here (" + why + "); it runs on the GPU machine");
        assumeTrue(why == null, "no CUDA GPU here (" + why + ")");
        JsonNode root = new ObjectMapper().readTree(SHARED.resolve("models/gutenberg-stories/golden.json").toFile());
        ObjectMapper m = new ObjectMapper();
        List<int[]> prompts = new ArrayList<>(), golden = new ArrayList<>();
        for (JsonNode p : root.path("prompts")) {
            prompts.add(m.convertValue(p.path("prompt_ids"), int[].class));
            golden.add(m.convertValue(p.path("target").path("generated_ids"), int[].class));
        }
        int tokens = 48;
        try (Model model = ModelLoader.load(SHARED.resolve("models/gutenberg-stories-llama-25m"), null);
             CudaBackend backend = new CudaBackend(0, CudaBackend.Precision.F32, false);
             CudaOffloadDevice device = new CudaOffloadDevice(backend, 1L << 30, 1L << 30);
             DiskStore disk = new DiskStore(tmp, 1L << 30);
             OffloadedGenerator g = new OffloadedGenerator(new LlamaProgram(model.config(), model.weights(), true), device,
                     OffloadPolicy.parse(policy), disk, 8, -1)) {
            List<OffloadedGenerator.Request> reqs = new ArrayList<>();
            for (int[] ids : prompts) reqs.add(new OffloadedGenerator.Request(ids, tokens, SamplingParams.GREEDY));
            List<int[]> out = g.generate(reqs, null);
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(Arrays.copyOf(golden.get(i), tokens), out.get(i), "prompt " + i + " under policy " + policy);
            }
        }
    }
}
