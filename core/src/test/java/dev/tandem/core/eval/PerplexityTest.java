package dev.tandem.core.eval;

import dev.tandem.core.TestModels;
import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.kv.BlockPool;
import dev.tandem.core.kv.BlockTable;
import dev.tandem.core.model.LlamaModel;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.StepBatch;
import dev.tandem.core.quant.GroupQuant4;
import dev.tandem.core.quant.WeightCompression;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Perplexity of the 25m gutenberg-stories model on a slice of its validation text, with and without GQ4. */
class PerplexityTest {
    private static Model model;
    private static CpuBackend backend;
    private static int[] stream;

    @BeforeAll
    static void load() throws IOException {
        model = ModelLoader.load(TestModels.model("gutenberg-stories-llama-25m"), null);
        backend = new CpuBackend();
        stream = Perplexity.documentTokens(model.tokenizer(), Files.readString(TestModels.shared().resolve("models/gutenberg-stories/val.txt")));
    }

    @AfterAll
    static void close() {
        backend.close();
        model.close();
    }

    /** The windowed prefill evaluation equals a plain token-by-token computation (decode steps, log-softmax here). */
    @Test
    void windowedPerplexityMatchesTokenByTokenComputation() {
        int context = 64, windows = 2;
        Perplexity.Result r = Perplexity.evaluate(model, backend, stream, context, (long) context * windows, KvLayout.Format.F32);
        assertEquals(context * windows, r.tokens());
        ModelConfig c = model.config();
        LlamaModel llama = new LlamaModel(c, model.weights(), backend, 1, 1);
        int blocks = context / KvLayout.DEFAULT_BLOCK_SIZE;
        KvStorage kv = backend.allocateKv(new KvLayout(c.layers(), blocks, KvLayout.DEFAULT_BLOCK_SIZE, c.kvHeads(), c.headDim()));
        BlockPool pool = new BlockPool(blocks, KvLayout.DEFAULT_BLOCK_SIZE);
        float[] row = new float[c.vocabSize()];
        double nll = 0;
        for (int w = 0; w < windows; w++) {
            BlockTable table = new BlockTable(pool);
            table.ensureCapacity(context);
            for (int i = 0; i < context; i++) {
                Activation logits = llama.forward(StepBatch.decode(new int[] {stream[w * context + i]}, i, List.of(table)), kv);
                backend.read(logits, 0, row);
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (float v : row) max = Math.max(max, v);
                for (float v : row) sum += Math.exp(v - max);
                nll -= row[stream[w * context + i + 1]] - max - Math.log(sum);
            }
            table.release();
        }
        assertEquals(nll / (context * windows), r.meanNll(), 1e-4);
        assertTrue(r.perplexity() > 5 && r.perplexity() < 100, "perplexity " + r.perplexity());
    }

    /**
     * 4-bit compression in FlexGen's format raises the perplexity of two 512-token windows by a bounded amount, and
     * the least-squares range choice for weights costs less than FlexGen's min / max. Measured here: KV cache +1.22%,
     * weights (least squares) and KV +4.06%, weights by min / max and KV +6.61%; on all of val.txt the 2% is
     * met by the KV cache and by the weights alone, not by both together (BENCHMARKS.md has the figures). The bounds
     * catch a regression in the format, the kernels or the range search.
     */
    @Test
    void compressionRaisesPerplexityBoundedly() {
        long tokens = 1024;
        double base = Perplexity.evaluate(model, backend, stream, 512, tokens, KvLayout.Format.F32).perplexity();
        double kv = Perplexity.evaluate(model, backend, stream, 512, tokens, KvLayout.Format.GQ4).perplexity();
        double both = bothCompressed(GroupQuant4.Range.LEAST_SQUARES, tokens), minMax = bothCompressed(GroupQuant4.Range.MIN_MAX, tokens);
        System.out.printf("perplexity on %d tokens: %.4f, KV GQ4 %.4f (%+.2f%%), weights (least squares) and KV GQ4 %.4f (%+.2f%%),"
                        + " weights (min / max) and KV GQ4 %.4f (%+.2f%%)%n", tokens, base, kv, 100 * (kv / base - 1), both,
                100 * (both / base - 1), minMax, 100 * (minMax / base - 1));
        assertTrue(kv > base && both > kv, "compression costs something: " + base + " / " + kv + " / " + both);
        assertTrue(kv / base <= KV_BOUND, "KV compression: " + base + " -> " + kv);
        assertTrue(both / base <= BOTH_BOUND, "weight and KV compression: " + base + " -> " + both);
        assertTrue(both < minMax, "least-squares weights " + both + ", min / max weights " + minMax);
    }

    private static double bothCompressed(GroupQuant4.Range range, long tokens) {
        try (Model compressed = WeightCompression.roundTrip(new Model(model.config(), model.weights(), model.tokenizer(), model.format(), () -> {}), range)) {
            return Perplexity.evaluate(compressed, backend, stream, 512, tokens, KvLayout.Format.GQ4).perplexity();
        }
    }

    static final double KV_BOUND = 1.015, BOTH_BOUND = 1.05;
}
