package dev.tandem.offload.exec;

import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.offload.policy.OffloadPolicy;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Pipeline parallelism on the CPU path (each stage a CPU "device" with its own backend and thread): the layers split over
 * 2 or 3 stages, evenly or not, several blocks in flight, weights partly on a shared disk tier, give Hugging Face's
 * greedy tokens for the 25m model, the same as one stage, and every stage reports time spent.
 */
class PipelinedGeneratorTest {
    static final Path SHARED = GoldenPrompts.SHARED;
    static Model model;
    static GoldenPrompts goldenPrompts;
    static List<int[]> prompts, golden;

    @TempDir
    Path tmp;

    @BeforeAll
    static void load() throws IOException {
        model = ModelLoader.load(SHARED.resolve("models/gutenberg-stories-llama-25m"), null);
        goldenPrompts = GoldenPrompts.load();
        prompts = goldenPrompts.prompts();
        golden = goldenPrompts.generated();
    }

    @AfterAll
    static void close() { model.close(); }

    /** Greedy tokens of the golden prompts (each {@code copies} times) under a policy on stages of {@code split} layers. */
    private List<int[]> run(String policy, int[] split, int copies, int tokens, List<OffloadedGenerator.StageStats> stats) {
        List<CpuBackend> backends = new ArrayList<>();
        List<OffloadDevice> devices = new ArrayList<>();
        try (DiskStore disk = new DiskStore(tmp, 1L << 30)) {
            for (int i = 0; i < split.length; i++) {
                CpuBackend b = new CpuBackend(1);
                backends.add(b);
                devices.add(new CpuOffloadDevice(b, 1L << 30));
            }
            try (OffloadedGenerator g = new OffloadedGenerator(new LlamaProgram(model.config(), model.weights(), false), devices, split,
                    OffloadPolicy.parse(policy), disk, 6, -1)) {
                List<OffloadedGenerator.Request> reqs = goldenPrompts.requests(copies, tokens);
                List<int[]> out = g.generate(reqs, null);
                OffloadedGenerator.Stats s = g.lastStats();
                assertEquals(reqs.size() * (long) tokens, s.generatedTokens());
                if (stats != null) stats.addAll(s.stages());
                return out;
            }
        } finally {
            devices.forEach(OffloadDevice::close);
            backends.forEach(CpuBackend::close);
        }
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {
            "1 1 100 0 100 0 100 0; 4,4",        // two stages, three blocks of one sequence: two in flight
            "1 2 0 100 0 100 0 100; 3,3,2",      // three stages, uneven, blocks of two GPU batches
            "2 1 0 50 0 100 0 100; 1,7",         // very uneven, half of each stage's weights on the shared disk
            "1 1 0 0 0 100 0 100; 2,5,1",        // every weight on disk, three stages all busy
    })
    void greedyTokensMatchHuggingFaceOnEveryPipeline(String policy, String split) {
        int[] layers = Arrays.stream(split.split(",")).mapToInt(Integer::parseInt).toArray();
        int copies = 2, tokens = 24;
        List<int[]> out = run(policy, layers, copies, tokens, null);
        for (int i = 0; i < out.size(); i++) {
            assertArrayEquals(Arrays.copyOf(golden.get(i % prompts.size()), tokens), out.get(i),
                    "request " + i + " under policy " + policy + " on stages of " + split + " layers");
        }
    }

    @Test
    void pipelineGivesTheSingleDeviceTokensAndTimesEachStage() {
        String policy = "1 1 30 30 0 100 0 100";
        List<OffloadedGenerator.StageStats> stats = new ArrayList<>();
        List<int[]> one = run(policy, new int[] {8}, 1, 64, null), three = run(policy, new int[] {3, 3, 2}, 1, 64, stats);
        for (int i = 0; i < prompts.size(); i++) {
            assertArrayEquals(golden.get(i), one.get(i), "one stage, prompt " + i);
            assertArrayEquals(one.get(i), three.get(i), "three stages vs one, prompt " + i);
        }
        assertEquals(3, stats.size());
        for (int s = 0; s < 3; s++) {
            assertEquals(new int[] {0, 3, 6}[s], stats.get(s).firstLayer());
            assertEquals(new int[] {3, 3, 2}[s], stats.get(s).layers());
            assertTrue(stats.get(s).busySeconds() > 0, "stage " + s + " ran passes");
        }
    }

    @Test
    void splitsThatDoNotCoverTheLayersAreRefused() {
        OffloadPolicy p = OffloadPolicy.parse("1 1 100 0 100 0 100 0");
        try (CpuBackend b = new CpuBackend(1); CpuOffloadDevice d0 = new CpuOffloadDevice(b, 1L << 30);
             CpuOffloadDevice d1 = new CpuOffloadDevice(b, 1L << 30)) {
            OffloadException e = assertThrows(OffloadException.class, () -> new OffloadedGenerator(
                    new LlamaProgram(model.config(), model.weights(), false), List.of(d0, d1), new int[] {8, 0}, p, null, 6, -1));
            assertTrue(e.getMessage().contains("at least one layer each, 8 in all"), e.getMessage());
        }
        assertArrayEquals(new int[] {3, 3, 2}, OffloadedGenerator.evenSplit(8, 3));
    }
}
