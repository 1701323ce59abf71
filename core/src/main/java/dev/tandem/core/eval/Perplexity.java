package dev.tandem.core.eval;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.kv.BlockPool;
import dev.tandem.core.kv.BlockTable;
import dev.tandem.core.model.LlamaModel;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.StepBatch;
import dev.tandem.core.tokenizer.Tokenizer;

/**
 * Perplexity of a model on a token stream, evaluated as the gutenberg-stories models were during training:
 * windows of {@code context + 1} tokens stepping by {@code context}, each window a fresh sequence that predicts its
 * last {@code context} tokens from the ones before (so every token after the first is predicted exactly once).
 * A window is one prefill step with logits for every row; log-softmax in double.
 */
public final class Perplexity {
    private Perplexity() {}

    /** Predicted tokens and their summed negative log-likelihood (nats). */
    public record Result(long tokens, double nll) {
        public double meanNll() { return nll / tokens; }

        public double perplexity() { return Math.exp(meanNll()); }
    }

    /** The text as one document: BOS (where the tokenizer adds one), its tokens, EOS. */
    public static int[] documentTokens(Tokenizer tokenizer, String text) {
        int[] ids = tokenizer.encode(text, true);
        if (tokenizer.eos() < 0) return ids;
        int[] out = java.util.Arrays.copyOf(ids, ids.length + 1);
        out[ids.length] = tokenizer.eos();
        return out;
    }

    /**
     * @param maxTokens    most tokens to predict (the stream's first ones); Long.MAX_VALUE for all
     * @param kvFormat     the KV cache's storage format
     */
    public static Result evaluate(Model model, Backend backend, int[] stream, int context, long maxTokens, KvLayout.Format kvFormat) {
        ModelConfig c = model.config();
        if (context < 1 || context > c.contextLength()) {
            throw new IllegalArgumentException("context " + context + " outside 1.." + c.contextLength() + " (the model's context)");
        }
        if (stream.length < 2) throw new IllegalArgumentException("need at least 2 tokens to predict one, got " + stream.length);
        int blocks = (context + KvLayout.DEFAULT_BLOCK_SIZE - 1) / KvLayout.DEFAULT_BLOCK_SIZE;
        LlamaModel llama = new LlamaModel(c, model.weights(), backend, context, context);
        KvStorage kv = backend.allocateKv(new KvLayout(c.layers(), blocks, KvLayout.DEFAULT_BLOCK_SIZE, c.kvHeads(), c.headDim(), kvFormat));
        BlockPool pool = new BlockPool(blocks, KvLayout.DEFAULT_BLOCK_SIZE);
        float[] row = new float[c.vocabSize()];
        long done = 0;
        double nll = 0;
        for (int start = 0; start + 1 < stream.length && done < maxTokens; start += context) {
            int n = (int) Math.min(Math.min(context, stream.length - 1 - start), maxTokens - done);
            BlockTable table = new BlockTable(pool);
            table.ensureCapacity(n);
            int[] rows = new int[n];
            for (int i = 0; i < n; i++) rows[i] = i;
            int[] window = java.util.Arrays.copyOfRange(stream, start, start + n); // positions from 0: a fresh sequence
            Activation logits = llama.forward(StepBatch.ofSequence(window, 0, n, table, rows), kv);
            for (int i = 0; i < n; i++) {
                backend.read(logits, i, row);
                nll += logSumExp(row) - row[stream[start + i + 1]];
            }
            table.release();
            done += n;
        }
        return new Result(done, nll);
    }

    static double logSumExp(float[] x) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : x) max = Math.max(max, v);
        double s = 0;
        for (float v : x) s += Math.exp(v - max);
        return max + Math.log(s);
    }
}
