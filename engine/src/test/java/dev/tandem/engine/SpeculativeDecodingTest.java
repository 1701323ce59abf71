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
    /** Every engine's KV cache comes out of the shared backend's arena for the whole run: keep them small. */
    static final EngineConfig SMALL = EngineConfig.DEFAULT.withKvCacheBytes(32L << 20);

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
        try (Engine e = new Engine(model, backend, SMALL, spec)) {
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

    /**
     * Logprobs with speculation: every committed token, whether an accepted draft, a correction or the bonus token,
     * reports the target's log-probability and top alternatives at its own position, as plain decoding does.
     */
    @Test
    void logprobsWithSpeculationAreTheTargetsAtEveryPosition() {
        List<List<TokenEvent>> plain = logprobRuns(null), spec = logprobRuns(SpeculativeConfig.draftModel(draft, 4));
        for (int i = 0; i < plain.size(); i++) {
            List<TokenEvent> a = plain.get(i), b = spec.get(i);
            assertEquals(a.size(), b.size(), "prompt " + i);
            for (int t = 0; t < a.size(); t++) {
                String at = "prompt " + i + ", token " + t;
                assertEquals(a.get(t).token(), b.get(t).token(), at);
                assertEquals(a.get(t).logprob(), b.get(t).logprob(), 1e-4, at);
                assertArrayEquals(a.get(t).topIds(), b.get(t).topIds(), at);
                for (int j = 0; j < a.get(t).topLogprobs().length; j++) {
                    assertEquals(a.get(t).topLogprobs()[j], b.get(t).topLogprobs()[j], 1e-4, at + ", alternative " + j);
                }
                assertTrue(b.get(t).logprob() <= 0 && b.get(t).topIds().length == 3, at);
            }
        }
    }

    private static List<List<TokenEvent>> logprobRuns(SpeculativeConfig spec) {
        List<List<TokenEvent>> out = new ArrayList<>();
        try (Engine e = new Engine(model, backend, SMALL, spec)) {
            for (GoldenPrompt g : golden) {
                List<TokenEvent> events = java.util.Collections.synchronizedList(new ArrayList<>());
                CompletableFuture<Void> done = new CompletableFuture<>();
                e.submit(new GenerationRequest(g.ids(), 32, SamplingParams.GREEDY, true, 3), new TokenListener() {
                    public void onToken(TokenEvent t) { events.add(t); }

                    public void onFinish(FinishReason reason, int p, int n, int c) { done.complete(null); }

                    public void onError(Throwable t) { done.completeExceptionally(t); }
                });
                done.join();
                out.add(events);
            }
            if (spec != null) assertTrue(e.stats().speculative().acceptedTokens() > 0, "speculation took place");
        }
        return out;
    }

    @Test
    void kvBlocksOfTargetAndDraftAreAllFreeAfterManyRejections() {
        try (Engine e = new Engine(model, backend, SMALL.withPrefixCaching(false), SpeculativeConfig.draftModel(draft, 8))) {
            List<CompletableFuture<EngineTest.Out>> fs = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                // Temperature 1.5 makes the draft disagree often: most steps reject and roll back.
                SamplingParams hot = new SamplingParams(1.5f, 0, 1f, 0f, 1f, 64, 0f, 0f, i);
                fs.add(submit(e, new GenerationRequest(model.tokenizer().encode(EngineTest.PROMPTS[i % 8], true), 90, hot, true, -1)));
            }
            for (var f : fs) assertEquals(90, f.join().tokens().length);
            waitIdle(e);
            SpecDecodeStats s = e.stats().speculative();
            assertTrue(s.draftTokens() - s.acceptedTokens() > 500, "many rejections: " + s.acceptedTokens() + " of " + s.draftTokens() + " kept");
            assertEquals(e.stats().kvBlocksTotal(), e.stats().kvBlocksFree(), "target blocks");
            DraftModelDrafter d = (DraftModelDrafter) e.speculator().drafter();
            assertEquals(d.numBlocks(), d.freeBlocks(), "draft model blocks");
        }
    }

    /**
     * Greedy sequences with and without speculation, sampled ones, adaptive k (so each sequence drafts its own k)
     * and a small token budget (so drafts are cut to fit) in one batch: every greedy sequence gets its solo tokens.
     */
    @Test
    void speculatingAndPlainSequencesBatchedTogetherGetTheirSoloTokens() {
        int max = 40;
        int[][] solo = EngineTest.alone(8, max);
        for (SpeculativeConfig spec : List.of(SpeculativeConfig.draftModel(draft, 6).withAdaptive(true), SpeculativeConfig.ngram(4))) {
            try (Engine e = new Engine(model, backend, SMALL.withMaxNumBatchedTokens(48), spec)) {
                List<CompletableFuture<EngineTest.Out>> fs = new ArrayList<>();
                for (int i = 0; i < 16; i++) {
                    fs.add(submit(e, EngineTest.greedy(i, max).withSpeculative(i % 2 == 0)));
                    SamplingParams warm = new SamplingParams(0.8f, 40, 0.95f, 0.05f, 1f, 64, 0f, 0f, i);
                    if (i % 4 == 0) submit(e, new GenerationRequest(model.tokenizer().encode(EngineTest.PROMPTS[(i + 3) % 8], true), max, warm, true, -1));
                }
                for (int i = 0; i < 16; i++) assertArrayEquals(solo[i % 8], fs.get(i).join().tokens(), (spec.draftModel() == null ? "ngram, " : "draft model, ") + spec.describe() + ": request " + i);
                waitIdle(e);
                assertTrue(e.stats().speculative().acceptedTokens() > 0, spec.describe() + " speculated");
                assertEquals(e.stats().kvBlocksTotal(), e.stats().kvBlocksFree());
            }
        }
    }

    @Test
    void preemptionWhileSpeculatingKeepsOutputsExact() {
        int max = 40;
        int[][] solo = EngineTest.alone(8, max);
        // 12 blocks of 16 tokens: 8 sequences of ~45 tokens (plus drafts) cannot all hold their blocks at once.
        long kvBytes = 12L * 16 * 2 * model.config().layers() * model.config().kvDim() * 4;
        try (Engine e = new Engine(model, backend, EngineConfig.DEFAULT.withKvCacheBytes(kvBytes).withPrefixCaching(false),
                SpeculativeConfig.draftModel(draft, 4))) {
            List<CompletableFuture<EngineTest.Out>> fs = new ArrayList<>();
            for (int i = 0; i < 8; i++) fs.add(submit(e, EngineTest.greedy(i, max)));
            for (int i = 0; i < 8; i++) assertArrayEquals(solo[i], fs.get(i).join().tokens(), "request " + i);
            assertTrue(e.stats().preemptions() > 0, "the small cache should have forced preemption");
            waitIdle(e);
            assertEquals(e.stats().kvBlocksTotal(), e.stats().kvBlocksFree());
            DraftModelDrafter d = (DraftModelDrafter) e.speculator().drafter();
            assertEquals(d.numBlocks(), d.freeBlocks(), "draft model blocks");
        }
    }
}
