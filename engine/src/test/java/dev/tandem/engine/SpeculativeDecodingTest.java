package dev.tandem.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.engine.spec.DraftModelDrafter;
import dev.tandem.engine.spec.SpecDecodeStats;
import dev.tandem.engine.spec.SpeculativeConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static dev.tandem.engine.EngineTest.backend;
import static dev.tandem.engine.EngineTest.model;
import static dev.tandem.engine.EngineTest.submit;
import static dev.tandem.engine.EngineTest.waitIdle;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Speculative decoding in the serving engine on the 25M target with the 3M draft (same tokenizer) and with n-gram
 * prompt lookup: greedy output identical to plain greedy, token for token; KV blocks all back after many rejections;
 * speculating and plain sequences batched together each get their solo tokens.
 */
class SpeculativeDecodingTest {
    static final Path SHARED = Path.of(System.getProperty("tandem.shared", "../../shared"));
    static Model draft;

    record GoldenPrompt(String text, int[] ids, int[] target) {}

    static List<GoldenPrompt> golden;

    @BeforeAll
    static void load() throws IOException {
        EngineTest.load();
        draft = ModelLoader.load(SHARED.resolve("models/gutenberg-stories-llama-3m"), null);
        JsonNode root = new ObjectMapper().readTree(SHARED.resolve("models/gutenberg-stories/golden.json").toFile());
        golden = new ArrayList<>();
        ObjectMapper m = new ObjectMapper();
        for (JsonNode p : root.path("prompts")) {
            golden.add(new GoldenPrompt(p.path("prompt").asText(), m.convertValue(p.path("prompt_ids"), int[].class),
                    m.convertValue(p.path("target").path("generated_ids"), int[].class)));
        }
    }

    @AfterAll
    static void close() {
        draft.close();
        EngineTest.close();
    }

    /** Every golden prompt, one request after another (batch 1), greedy for 64 tokens past EOS. */
    private static int[][] runGolden(SpeculativeConfig spec) {
        int[][] out = new int[golden.size()][];
        try (Engine e = new Engine(model, backend, EngineConfig.DEFAULT, spec)) {
            for (int i = 0; i < golden.size(); i++) {
                out[i] = submit(e, new GenerationRequest(golden.get(i).ids(), 64, SamplingParams.GREEDY, true, -1)).join().tokens();
            }
            SpecDecodeStats s = e.stats().speculative();
            if (spec != null) assertTrue(s.acceptedTokens() > 0 && s.drafts() > 0, "speculation took place: " + s);
        }
        return out;
    }

    @Test
    void greedyWithTheDraftModelIsPlainGreedyOnEveryGoldenPrompt() {
        int[][] plain = runGolden(null);
        for (int k : new int[] {1, 4, 8}) {
            int[][] spec = runGolden(SpeculativeConfig.draftModel(draft, k));
            for (int i = 0; i < golden.size(); i++) assertArrayEquals(plain[i], spec[i], "k = " + k + ", prompt '" + golden.get(i).text() + "'");
        }
        int[][] adaptive = runGolden(SpeculativeConfig.draftModel(draft, 8).withAdaptive(true));
        for (int i = 0; i < golden.size(); i++) assertArrayEquals(plain[i], adaptive[i], "adaptive, prompt '" + golden.get(i).text() + "'");
        // And plain greedy is Hugging Face's float32 greedy continuation on these prompts.
        for (int i = 0; i < golden.size(); i++) assertArrayEquals(golden.get(i).target(), plain[i], "golden '" + golden.get(i).text() + "'");
    }

    @Test
    void greedyWithNgramLookupIsPlainGreedyOnEveryGoldenPrompt() {
        int[][] plain = runGolden(null);
        for (int k : new int[] {2, 5}) {
            int[][] spec = runGolden(SpeculativeConfig.ngram(k));
            for (int i = 0; i < golden.size(); i++) assertArrayEquals(plain[i], spec[i], "k = " + k + ", prompt '" + golden.get(i).text() + "'");
        }
    }
}
