package dev.tandem.engine;

import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.kv.BlockPool;
import dev.tandem.core.kv.BlockTable;
import dev.tandem.core.model.LlamaModel;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.StepBatch;
import dev.tandem.core.sampling.Sampler;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.engine.spec.SpeculativeConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * At temperature > 0, speculative decoding must sample from the target's distribution exactly, whatever the
 * drafter. Many seeded requests on stories260K (target) with llama2xs-279K (an independently trained draft on the
 * same 512-token vocabulary) or n-gram lookup; the joint frequency of the first two generated tokens, both of them
 * speculated, is compared by a chi-square test with the target's exact distribution computed position by position.
 * The same counts against the draft's own distribution must fail the test, so the test can tell the two apart.
 */
class SpeculativeSamplingTest {
    static final Path MODELS = Path.of(System.getProperty("tandem.shared", "../../shared"), "models");
    static final int SAMPLES = 3000;
    static Model target, draft;
    static CpuBackend backend;

    @BeforeAll
    static void load() {
        target = ModelLoader.load(MODELS.resolve("stories260K/stories260K.bin"), null);
        draft = ModelLoader.load(MODELS.resolve("llama2xs-279K/llama2xs-279K.bin"), null);
        backend = new CpuBackend(Runtime.getRuntime().availableProcessors());
    }

    @AfterAll
    static void close() {
        backend.close();
        draft.close();
        target.close();
    }

    private static SamplingParams params(float temperature, int topK, float topP, long seed) {
        return new SamplingParams(temperature, topK, topP, 0f, 1f, 64, 0f, 0f, seed);
    }

    @Test
    void draftModelSamplesFollowTheTargetAtTemperatureOne() {
        int[] prompt = target.tokenizer().encode("Once upon a time", true);
        SamplingParams p = params(1f, 0, 1f, 0);
        Map<Long, Integer> counts = sample(SpeculativeConfig.draftModel(draft, 2), prompt, p);
        assertFollows(counts, exact(target, prompt, p), true);
        assertFollows(counts, exact(draft, prompt, p), false);
    }

    @Test
    void draftModelSamplesFollowTheTargetWithTopKAndTopP() {
        int[] prompt = target.tokenizer().encode("Lily and Ben", true);
        SamplingParams p = params(0.8f, 12, 0.9f, 0);
        Map<Long, Integer> counts = sample(SpeculativeConfig.draftModel(draft, 3), prompt, p);
        assertFollows(counts, exact(target, prompt, p), true);
        assertFollows(counts, exact(draft, prompt, p), false);
    }

    @Test
    void ngramSamplesFollowTheTargetAtTemperatureOne() {
        // A prompt that repeats itself, so that lookup drafts from the first generated token on.
        int[] prompt = target.tokenizer().encode("The cat sat. The cat sat. The cat", true);
        SamplingParams p = params(1f, 0, 1f, 0);
        Map<Long, Integer> counts = sample(SpeculativeConfig.ngram(2), prompt, p);
        assertFollows(counts, exact(target, prompt, p), true);
    }

    /** Joint counts of the first two tokens of SAMPLES seeded requests (max 3 tokens, so k = 2 drafts cover both). */
    private static Map<Long, Integer> sample(SpeculativeConfig spec, int[] prompt, SamplingParams p) {
        Map<Long, Integer> counts = new HashMap<>();
        try (Engine e = new Engine(target, backend, EngineConfig.DEFAULT.withMaxQueue(SAMPLES).withKvCacheBytes(16L << 20), spec)) {
            List<CompletableFuture<EngineTest.Out>> fs = new ArrayList<>();
            for (int i = 0; i < SAMPLES; i++) {
                SamplingParams seeded = new SamplingParams(p.temperature(), p.topK(), p.topP(), p.minP(), 1f, 64, 0f, 0f, 1000 + i);
                fs.add(EngineTest.submit(e, new GenerationRequest(prompt, 3, seeded, true, -1)));
            }
            for (var f : fs) {
                int[] t = f.join().tokens();
                counts.merge(((long) t[0] << 32) | t[1], 1, Integer::sum);
            }
            var s = e.stats().speculative();
            assertTrue(s.drafts() >= SAMPLES && s.acceptedTokens() > 0 && s.acceptedTokens() < s.draftTokens(),
                    "drafts were both kept and rejected: " + s.acceptedTokens() + " of " + s.draftTokens());
        }
        return counts;
    }

    /** P(t1, t2) = p(t1 | prompt) p(t2 | prompt, t1) under the request's sampling transforms, by plain forward passes. */
    private static Map<Long, Double> exact(Model m, int[] prompt, SamplingParams p) {
        var c = m.config();
        LlamaModel llama = new LlamaModel(c, m.weights(), backend, 64, 1);
        int blocks = 8;
        KvStorage kv = backend.allocateKv(new KvLayout(c.layers(), blocks, KvLayout.DEFAULT_BLOCK_SIZE, c.kvHeads(), c.headDim()));
        BlockPool pool = new BlockPool(blocks, KvLayout.DEFAULT_BLOCK_SIZE);
        Sampler sampler = new Sampler(p);
        float[] p1 = distribution(llama, kv, pool, sampler, prompt);
        Map<Long, Double> out = new HashMap<>();
        for (int t1 = 0; t1 < p1.length; t1++) {
            if (p1[t1] == 0) continue;
            int[] longer = Arrays.copyOf(prompt, prompt.length + 1);
            longer[prompt.length] = t1;
            float[] p2 = distribution(llama, kv, pool, sampler, longer);
            for (int t2 = 0; t2 < p2.length; t2++) if (p2[t2] > 0) out.put(((long) t1 << 32) | t2, (double) p1[t1] * p2[t2]);
        }
        return out;
    }

    private static float[] distribution(LlamaModel llama, KvStorage kv, BlockPool pool, Sampler sampler, int[] tokens) {
        BlockTable table = new BlockTable(pool);
        try {
            table.ensureCapacity(tokens.length);
            var logits = llama.forward(StepBatch.ofSequence(tokens, 0, tokens.length, table, tokens.length - 1), kv);
            float[] row = new float[logits.cols()], probs = new float[row.length];
            llama.backend().read(logits, 0, row);
            sampler.distribution(row, tokens, tokens.length, probs);
            return probs;
        } finally {
            table.release();
        }
    }

    /**
     * Pearson's chi-square over the cells expected at least 5 times (the rest pooled), against the Wilson-Hilferty
     * approximation of the chi-square quantile at z = 3.5 (p about 2e-4). The draws are seeded, so the outcome is fixed.
     */
    private static void assertFollows(Map<Long, Integer> counts, Map<Long, Double> probs, boolean expectFit) {
        double chi2 = 0, pooledExpected = 0;
        long pooledObserved = 0, seen = 0;
        int cells = 0;
        for (var e : probs.entrySet()) {
            double expected = e.getValue() * SAMPLES;
            int observed = counts.getOrDefault(e.getKey(), 0);
            seen += observed;
            if (expected >= 5) {
                chi2 += (observed - expected) * (observed - expected) / expected;
                cells++;
            } else {
                pooledExpected += expected;
                pooledObserved += observed;
            }
        }
        long impossible = SAMPLES - seen; // pairs the distribution gives probability 0
        if (expectFit) assertEquals(0, impossible, "samples outside the target's support");
        pooledObserved += impossible;
        if (pooledExpected > 0) {
            chi2 += (pooledObserved - pooledExpected) * (pooledObserved - pooledExpected) / Math.max(pooledExpected, 1e-9);
            cells++;
        }
        int df = cells - 1;
        double a = 2.0 / (9 * df);
        double z = (Math.cbrt(chi2 / df) - (1 - a)) / Math.sqrt(a);
        String summary = String.format("chi2 %.1f over %d degrees of freedom (z %.2f)", chi2, df, z);
        assertTrue(df >= 4, "too few cells to test: " + summary);
        if (expectFit) assertTrue(z < 3.5, "samples do not follow the target: " + summary);
        else assertTrue(z > 3.5, "the test cannot tell the draft's distribution from the target's: " + summary);
    }
}
