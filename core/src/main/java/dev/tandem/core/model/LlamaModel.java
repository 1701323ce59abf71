package dev.tandem.core.model;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.AttentionBatch;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.Rope;
import dev.tandem.core.backend.Weight;

import java.util.ArrayList;
import java.util.List;

/**
 * The Llama-family forward pass (Llama, Mistral, Qwen2), written once over the {@link Backend} seam.
 * One call runs a whole step: every prefill chunk and decode token of the batch goes through each layer
 * together, so weights are read once per step.
 */
public final class LlamaModel {
    private final ModelConfig config;
    private final Backend backend;
    private final Rope rope;
    private final Weight embedding, finalNorm, output;
    private final List<Layer> layers = new ArrayList<>();
    private final int maxTokens;
    private final float attentionScale;

    // Scratch activations sized for the largest step; each step uses views of its own row count.
    private final Activation x, xb, q, k, v, att, proj, gate, up, lastRows, lastNorm, logits;

    private record Layer(Weight attnNorm, Weight wq, Weight wk, Weight wv, Weight wo, Weight bq, Weight bk, Weight bv,
                         Weight ffnNorm, Weight gate, Weight up, Weight down) {}

    /**
     * @param maxTokens most tokens one step may carry (prefill chunk plus decodes)
     * @param maxLogitRows most rows one step may ask logits for
     */
    public LlamaModel(ModelConfig config, ModelWeights weights, Backend backend, int maxTokens, int maxLogitRows) {
        this.config = config;
        this.backend = backend;
        this.maxTokens = maxTokens;
        this.rope = config.rope(config.contextLength());
        this.attentionScale = (float) (1.0 / Math.sqrt(config.headDim()));
        embedding = backend.upload(weights.embedding());
        finalNorm = backend.upload(weights.finalNorm());
        output = weights.output() == weights.embedding() ? embedding : backend.upload(weights.output());
        for (LayerWeights l : weights.layers()) {
            layers.add(new Layer(backend.upload(l.attnNorm()), backend.upload(l.wq()), backend.upload(l.wk()),
                    backend.upload(l.wv()), backend.upload(l.wo()),
                    l.bq() == null ? null : backend.upload(l.bq()), l.bk() == null ? null : backend.upload(l.bk()),
                    l.bv() == null ? null : backend.upload(l.bv()),
                    backend.upload(l.ffnNorm()), backend.upload(l.gate()), backend.upload(l.up()), backend.upload(l.down())));
        }
        x = backend.allocate(maxTokens, config.dim());
        xb = backend.allocate(maxTokens, config.dim());
        q = backend.allocate(maxTokens, config.qDim());
        k = backend.allocate(maxTokens, config.kvDim());
        v = backend.allocate(maxTokens, config.kvDim());
        att = backend.allocate(maxTokens, config.qDim());
        proj = backend.allocate(maxTokens, config.dim());
        gate = backend.allocate(maxTokens, config.hiddenDim());
        up = backend.allocate(maxTokens, config.hiddenDim());
        lastRows = backend.allocate(maxLogitRows, config.dim());
        lastNorm = backend.allocate(maxLogitRows, config.dim());
        logits = backend.allocate(maxLogitRows, config.vocabSize());
    }

    public ModelConfig config() { return config; }

    public Backend backend() { return backend; }

    public int maxTokens() { return maxTokens; }

    /**
     * Runs one step: writes the batch's keys and values into {@code kv} and returns the logits of
     * {@code batch.logitRows()} (a view valid until the next call).
     */
    public Activation forward(StepBatch batch, KvStorage kv) {
        return forward(batch, kv, null);
    }

    /**
     * As {@link #forward(StepBatch, KvStorage)}, calling {@code afterKvWrite} with each layer's index as soon as
     * that layer's keys and values of the batch are in {@code kv}: a Splitwise prompt worker starts sending a
     * layer's KV blocks from there while the following layers compute.
     */
    public Activation forward(StepBatch batch, KvStorage kv, java.util.function.IntConsumer afterKvWrite) {
        int n = batch.size();
        if (n == 0 || n > maxTokens) throw new IllegalArgumentException("step of " + n + " tokens; this model was set up for 1.." + maxTokens);
        for (int t : batch.tokens()) {
            if (t < 0 || t >= config.vocabSize()) throw new IllegalArgumentException("token id " + t + " outside the vocabulary of " + config.vocabSize());
        }
        for (int p : batch.positions()) rope.checkPosition(p);
        AttentionBatch ab = new AttentionBatch(batch.seqs(), config.heads(), config.kvHeads(), config.headDim(), attentionScale);
        Activation x = this.x.rows(n), xb = this.xb.rows(n), q = this.q.rows(n), k = this.k.rows(n), v = this.v.rows(n),
                att = this.att.rows(n), proj = this.proj.rows(n), gate = this.gate.rows(n), up = this.up.rows(n);
        backend.embed(embedding, batch.tokens(), x);
        for (int l = 0; l < layers.size(); l++) {
            Layer w = layers.get(l);
            backend.rmsNorm(x, w.attnNorm, config.normEps(), xb);
            backend.matmul(xb, w.wq, q);
            backend.matmul(xb, w.wk, k);
            backend.matmul(xb, w.wv, v);
            if (w.bq != null) {
                backend.addBias(q, w.bq);
                backend.addBias(k, w.bk);
                backend.addBias(v, w.bv);
            }
            backend.rope(q, config.heads(), batch.positions(), rope);
            backend.rope(k, config.kvHeads(), batch.positions(), rope);
            backend.writeKv(kv, l, k, v, batch.slots());
            if (afterKvWrite != null) afterKvWrite.accept(l);
            backend.attention(q, kv, l, ab, att);
            backend.matmul(att, w.wo, proj);
            backend.add(x, proj);
            backend.rmsNorm(x, w.ffnNorm, config.normEps(), xb);
            backend.matmul(xb, w.gate, gate);
            backend.matmul(xb, w.up, up);
            backend.swiglu(gate, up, gate);
            backend.matmul(gate, w.down, proj);
            backend.add(x, proj);
        }
        int r = batch.logitRows().length;
        Activation last = lastRows.rows(r), norm = lastNorm.rows(r), out = logits.rows(r);
        backend.gatherRows(x, batch.logitRows(), last);
        backend.rmsNorm(last, finalNorm, config.normEps(), norm);
        backend.matmul(norm, output, out);
        return out;
    }
}
