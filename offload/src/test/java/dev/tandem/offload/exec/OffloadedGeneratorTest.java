package dev.tandem.offload.exec;

import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.offload.policy.OffloadPolicy;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Offloaded generation on the CPU path gives Hugging Face's greedy tokens for the 25m model whatever the policy puts
 * on disk, however the block is cut into batches, and however prompts are cut into prefill segments.
 */
class OffloadedGeneratorTest {
    static final Path SHARED = GoldenPrompts.SHARED;
    static Model model;
    static CpuBackend backend;
    static List<int[]> prompts, golden;

    @TempDir
    Path tmp;

    @BeforeAll
    static void load() throws IOException {
        model = ModelLoader.load(SHARED.resolve("models/gutenberg-stories-llama-25m"), null);
        backend = new CpuBackend(2);
        GoldenPrompts g = GoldenPrompts.load();
        prompts = g.prompts();
        golden = g.generated();
    }

    @AfterAll
    static void close() {
        backend.close();
        model.close();
    }

    private List<int[]> run(String policy, int chunkRows, int tokens) {
        OffloadPolicy p = OffloadPolicy.parse(policy);
        try (CpuOffloadDevice device = new CpuOffloadDevice(backend, 1L << 30);
             DiskStore disk = new DiskStore(tmp, 1L << 30);
             OffloadedGenerator g = new OffloadedGenerator(new LlamaProgram(model.config(), model.weights(), false), device, p, disk,
                     chunkRows, -1)) {
            List<OffloadedGenerator.Request> reqs = new ArrayList<>();
            for (int[] ids : prompts) reqs.add(new OffloadedGenerator.Request(ids, tokens, SamplingParams.GREEDY));
            List<int[]> out = g.generate(reqs, null);
            OffloadedGenerator.Stats s = g.lastStats();
            assertEquals(prompts.size() * (long) tokens, s.generatedTokens());
            return out;
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {
            "8 1 100 0 100 0 100 0",      // everything in RAM, one batch
            "2 3 0 100 0 100 0 100",      // several GPU batches and blocks
            "3 2 0 50 0 100 0 100",       // half the weights on disk
            "2 2 0 0 0 100 0 100",        // all weights on disk
    })
    void greedyTokensMatchHuggingFaceUnderAnyPolicy(String policy) {
        List<int[]> out = run(policy, 6, 24);
        for (int i = 0; i < prompts.size(); i++) {
            assertArrayEquals(java.util.Arrays.copyOf(golden.get(i), 24), out.get(i), "prompt " + i + " under policy " + policy);
        }
    }

    @Test
    void fullLengthGoldenWithWeightsOnDisk() {
        List<int[]> out = run("4 2 30 30 0 100 0 100", 1024, 64);
        for (int i = 0; i < prompts.size(); i++) assertArrayEquals(golden.get(i), out.get(i), "prompt " + i);
    }

    @Test
    void capsAreEnforcedWithClearErrors() {
        OffloadPolicy p = OffloadPolicy.parse("2 1 100 0 100 0 100 0");
        try (CpuOffloadDevice device = new CpuOffloadDevice(backend, 1L << 20)) {
            OffloadException e = assertThrows(OffloadException.class,
                    () -> new OffloadedGenerator(new LlamaProgram(model.config(), model.weights(), false), device, p, null, 64, -1));
            assertTrue(e.getMessage().contains("CPU memory cap exceeded"), e.getMessage());
        }
        OffloadPolicy onDisk = OffloadPolicy.parse("2 1 0 0 100 0 100 0");
        try (CpuOffloadDevice device = new CpuOffloadDevice(backend, 1L << 30)) {
            OffloadException e = assertThrows(OffloadException.class,
                    () -> new OffloadedGenerator(new LlamaProgram(model.config(), model.weights(), false), device, onDisk, null, 64, -1));
            assertTrue(e.getMessage().contains("no disk tier"), e.getMessage());
        }
    }
}
