package dev.tandem.engine;

import dev.tandem.core.OptTestModels;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.OptShapes;
import dev.tandem.core.sampling.SamplingParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * OPT through the serving engine (continuous batching, chunked prefill, paged KV): concurrent greedy requests get the
 * ids that {@link dev.tandem.core.generate.Generator} computes for each alone.
 */
class OptEngineTest {
    static Model model;
    static CpuBackend backend;
    static final int[][] PROMPTS = {{0, 5, 77, 300, 12}, {0, 44, 45, 46}, {0}, {0, 400, 511, 3, 9, 100, 200, 250, 17, 42, 8, 19, 64, 128, 256, 33, 7},
            {0, 2, 2, 9}, {0, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310, 311, 312, 313, 314, 315, 316, 317, 318, 319, 320}};

    @BeforeAll
    static void load() {
        model = ModelLoader.load(OptTestModels.folder("opt-tiny", OptShapes.of("opt-tiny"), OptTestModels.GOLDEN_SEED), null);
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void close() {
        backend.close();
        model.close();
    }

    @Test
    void concurrentGreedyRequestsGetTheirSoloIds() {
        int max = 20;
        // Small steps: prompts are chunked and share steps with other sequences' decodes.
        try (Engine e = new Engine(model, backend, EngineConfig.DEFAULT.withMaxNumBatchedTokens(16))) {
            List<CompletableFuture<EngineTest.Out>> fs = new ArrayList<>();
            for (int[] p : PROMPTS) fs.add(EngineTest.submit(e, new GenerationRequest(p, max, SamplingParams.GREEDY, true, -1)));
            for (int i = 0; i < PROMPTS.length; i++) {
                int[] got = fs.get(i).join().tokens();
                assertEquals(max, got.length);
                assertArrayEquals(OptTestModels.greedy(backend, model, PROMPTS[i], max, 64), got, "request " + i);
            }
            assertTrue(e.stats().steps() < PROMPTS.length * max, "requests were batched: " + e.stats().steps() + " steps");
        }
    }
}
