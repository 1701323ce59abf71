package dev.tandem.core.generate;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.kv.BlockPool;
import dev.tandem.core.kv.BlockTable;
import dev.tandem.core.model.DecoderModel;
import dev.tandem.core.model.StepBatch;
import dev.tandem.core.sampling.Sampler;
import dev.tandem.core.sampling.SamplingParams;

import java.util.Arrays;
import java.util.function.IntPredicate;

/**
 * Generates one sequence: the prompt as matrix-matrix chunks, then one token per step, through the same
 * paged KV-cache layout (blocks of 16 tokens, a block table) the serving engine uses.
 */
public final class Generator implements AutoCloseable {
    private final DecoderModel model;
    private final int context;
    private final BlockPool pool;
    private final KvStorage kv;
    private final float[] logitsRow;
    private final int[] argmaxOut = new int[1];

    public Generator(DecoderModel model, int context) {
        this.model = model;
        this.context = context;
        int blocks = (context + KvLayout.DEFAULT_BLOCK_SIZE - 1) / KvLayout.DEFAULT_BLOCK_SIZE;
        var c = model.config();
        this.pool = new BlockPool(blocks, KvLayout.DEFAULT_BLOCK_SIZE);
        this.kv = model.backend().allocateKv(new KvLayout(c.layers(), blocks, KvLayout.DEFAULT_BLOCK_SIZE, c.kvHeads(), c.headDim()));
        this.logitsRow = new float[c.vocabSize()];
    }

    /** Receives each generated token as it is produced; returning false stops generation. */
    public interface TokenSink extends IntPredicate {}

    /**
     * Generates up to {@code maxTokens} tokens after {@code prompt}.
     *
     * @param stopAtEos stop (without emitting) at the model's EOS token
     */
    public GenerationStats generate(int[] prompt, int maxTokens, SamplingParams params, boolean stopAtEos, int eos, TokenSink sink) {
        if (prompt.length == 0) throw new IllegalArgumentException("empty prompt: at least one token (e.g. BOS) is needed");
        if (prompt.length >= context) {
            throw new IllegalArgumentException("prompt of " + prompt.length + " tokens does not fit the context of " + context + " tokens");
        }
        Sampler sampler = new Sampler(params);
        int[] history = Arrays.copyOf(prompt, prompt.length + maxTokens);
        int len = prompt.length;
        BlockTable table = new BlockTable(pool);
        try {
            long t0 = System.nanoTime();
            int next = -1;
            for (int start = 0; start < prompt.length; start += model.maxTokens()) {
                int n = Math.min(model.maxTokens(), prompt.length - start);
                Activation logits = step(table, history, start, n);
                if (start + n == prompt.length) next = sample(sampler, logits, history, len);
            }
            long t1 = System.nanoTime();
            int generated = 0;
            String reason = "length";
            while (true) {
                if (stopAtEos && next == eos) { reason = "eos"; break; }
                history[len++] = next;
                generated++;
                if (!sink.test(next)) { reason = "stopped"; break; }
                if (generated >= maxTokens) break;
                if (len >= context) { reason = "context"; break; }
                next = sample(sampler, step(table, history, len - 1, 1), history, len);
            }
            return new GenerationStats(prompt.length, t1 - t0, generated, System.nanoTime() - t1, reason);
        } finally {
            table.release();
        }
    }

    /** Plain greedy takes the argmax on the backend (one int crosses from a GPU instead of the vocabulary's logits). */
    private int sample(Sampler sampler, Activation logits, int[] history, int len) {
        SamplingParams p = sampler.params();
        if (p.argmaxOnly()) {
            model.backend().argmax(logits, argmaxOut);
            return argmaxOut[0];
        }
        if (model.backend().samplesOnDevice() && !p.penalized()) {
            model.backend().sample(logits, new float[] {p.temperature()}, new int[] {p.topK()}, new float[] {p.topP()},
                    new float[] {p.minP()}, new float[] {sampler.nextUniform()}, argmaxOut);
            return argmaxOut[0];
        }
        model.backend().read(logits, 0, logitsRow);
        return sampler.sample(logitsRow, history, len);
    }

    /** Runs positions [start, start + n) of the sequence and returns the logits of the last one. */
    private Activation step(BlockTable table, int[] tokens, int start, int n) {
        if (!table.ensureCapacity(start + n)) throw new IllegalStateException("KV cache full");
        return model.forward(StepBatch.ofSequence(tokens, start, n, table, n - 1), kv);
    }

    public int context() { return context; }

    @Override
    public void close() { }
}
