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
public final class LlamaModel implements DecoderModel {
    private final ModelConfig config;
    private final Backend backend;
    private final Rope rope;
    private final Weight embedding, finalNorm, output;
    private final List<Layer> layers = new ArrayList<>();
    private final int maxTokens;
    private final float attentionScale;

    // Scratch activations sized for the largest step; each step uses views of its own row count. With stacked
    // products (qkv, gateUp) q/k/v/up are column views of their outputs and have no buffers of their own.
    private final Activation x, xb, q, k, v, att, proj, gate, up, qkv, gateUp, lastRows, lastNorm, logits;

    /** wqkv / wGateUp are set (and wq, wk, wv / gate, up null) when the backend stacks those products. */
    private record Layer(Weight attnNorm, Weight wq, Weight wk, Weight wv, Weight wqkv, Weight wo, Weight bq, Weight bk, Weight bv,
                         Weight ffnNorm, Weight gate, Weight up, Weight wGateUp, Weight down) {}

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
            Weight qkvW = l.bq() == null ? backend.uploadStacked(l.wq().name() + "|k|v", List.of(l.wq(), l.wk(), l.wv())) : null;
            Weight guW = backend.uploadStacked(l.gate().name() + "|up", List.of(l.gate(), l.up()));
            layers.add(new Layer(backend.upload(l.attnNorm()),
                    qkvW == null ? backend.upload(l.wq()) : null, qkvW == null ? backend.upload(l.wk()) : null,
                    qkvW == null ? backend.upload(l.wv()) : null, qkvW, backend.upload(l.wo()),
                    l.bq() == null ? null : backend.upload(l.bq()), l.bk() == null ? null : backend.upload(l.bk()),
                    l.bv() == null ? null : backend.upload(l.bv()),
                    backend.upload(l.ffnNorm()), guW == null ? backend.upload(l.gate()) : null, guW == null ? backend.upload(l.up()) : null,
                    guW, backend.upload(l.down())));
        }
        boolean anyQkv = layers.stream().anyMatch(l -> l.wqkv != null), anySplitQkv = layers.stream().anyMatch(l -> l.wqkv == null);
        x = backend.allocate(maxTokens, config.dim());
        xb = backend.allocate(maxTokens, config.dim());
        q = anySplitQkv ? backend.allocate(maxTokens, config.qDim()) : null;
        k = anySplitQkv ? backend.allocate(maxTokens, config.kvDim()) : null;
        v = anySplitQkv ? backend.allocate(maxTokens, config.kvDim()) : null;
        qkv = anyQkv ? backend.allocate(maxTokens, config.qDim() + 2 * config.kvDim()) : null;
        att = backend.allocate(maxTokens, config.qDim());
        proj = backend.allocate(maxTokens, config.dim());
        gate = backend.allocate(maxTokens, config.hiddenDim());
        up = layers.stream().anyMatch(l -> l.wGateUp == null) ? backend.allocate(maxTokens, config.hiddenDim()) : null;
        gateUp = layers.stream().anyMatch(l -> l.wGateUp != null) ? backend.allocate(maxTokens, 2 * config.hiddenDim()) : null;
        lastRows = backend.allocate(maxLogitRows, config.dim());
        lastNorm = backend.allocate(maxLogitRows, config.dim());
        logits = backend.allocate(maxLogitRows, config.vocabSize());
    }

    @Override
    public ModelConfig config() { return config; }

    @Override
    public Backend backend() { return backend; }

    @Override
    public int maxTokens() { return maxTokens; }

    @Override
    public Activation forward(StepBatch batch, KvStorage kv, java.util.function.IntConsumer afterKvWrite) {
        batch.check(maxTokens, config.vocabSize());
        for (int p : batch.positions()) rope.checkPosition(p);
        int logitRows = batch.logitRows().length;
        int stride = batch.blockTableStride(kv.layout().blockSize(), config.contextLength());
        // A step that streams its layers' KV out runs its ops directly: a replayed recording would skip the hook.
        int q = afterKvWrite == null ? uniformQueryLength(batch) : 0;
        int padded = q > 0 ? backend.replayRows(batch.seqs().size()) : 0;
        if (padded > 0 && (long) padded * q <= Math.min(maxTokens, logits.rows())) {
            // A replayable step (decode, or the verification of q drafted tokens per sequence): padded to a recorded
            // number of sequences, every row sampled, metadata read on the device.
            StepBatch p = padUniform(batch, padded, q);
            AttentionBatch ab = attentionBatch(p);
            backend.beginStep(p.tokens(), p.positions(), p.slots(), ab, stride);
            backend.replay(new ReplayOwner(this, kv, q), padded * q, () -> run(p, ab, kv, null));
            return logits.rows(logitRows);
        }
        AttentionBatch ab = attentionBatch(batch);
        backend.beginStep(batch.tokens(), batch.positions(), batch.slots(), ab, stride);
        run(batch, ab, kv, afterKvWrite);
        return logits.rows(logitRows);
    }

    /** A recorded step belongs to this model's scratch buffers, this KV cache and its tokens per sequence. */
    private record ReplayOwner(LlamaModel model, KvStorage kv, int tokensPerSequence) {}

    private AttentionBatch attentionBatch(StepBatch batch) {
        return new AttentionBatch(batch.seqs(), config.heads(), config.kvHeads(), config.headDim(), attentionScale);
    }

    /**
     * q when every sequence of the step has q consecutive rows in order (q = 1: decode; q = k + 1: verifying k drafted
     * tokens) and every row asks for its logits; 0 otherwise.
     */
    private static int uniformQueryLength(StepBatch batch) {
        int seqs = batch.seqs().size();
        if (seqs == 0 || batch.size() % seqs != 0 || batch.logitRows().length != batch.size()) return 0;
        int q = batch.size() / seqs;
        for (int i = 0; i < seqs; i++) {
            AttentionBatch.Seq s = batch.seqs().get(i);
            if (s.qLen() != q || s.qStart() != i * q) return 0;
        }
        for (int i = 0; i < batch.size(); i++) if (batch.logitRows()[i] != i) return 0;
        return q;
    }

    private static final int[] PAD_TABLE = {0};

    /**
     * Adds sequences of q rows at positions 0..q-1 of block 0 that write nothing (slot -1) and are sampled but ignored,
     * so that the step has {@code seqs} sequences.
     */
    private static StepBatch padUniform(StepBatch b, int seqs, int q) {
        int n = b.size(), rows = seqs * q;
        int[] tokens = java.util.Arrays.copyOf(b.tokens(), rows), positions = java.util.Arrays.copyOf(b.positions(), rows);
        int[] slots = java.util.Arrays.copyOf(b.slots(), rows), logitRows = new int[rows];
        List<AttentionBatch.Seq> padded = new ArrayList<>(b.seqs());
        for (int i = 0; i < rows; i++) logitRows[i] = i;
        for (int i = n; i < rows; i++) {
            slots[i] = -1;
            positions[i] = (i - n) % q;
        }
        for (int s = b.seqs().size(); s < seqs; s++) padded.add(new AttentionBatch.Seq(s * q, q, q, PAD_TABLE));
        return new StepBatch(tokens, positions, slots, padded, logitRows);
    }

    /** The step's ops, in order; every array they use is one of the batch's (what beginStep was given). */
    private void run(StepBatch batch, AttentionBatch ab, KvStorage kv, java.util.function.IntConsumer afterKvWrite) {
        int n = batch.size();
        Activation x = this.x.rows(n), xb = this.xb.rows(n), att = this.att.rows(n), proj = this.proj.rows(n), gate = this.gate.rows(n);
        int qDim = config.qDim(), kvDim = config.kvDim(), hidden = config.hiddenDim();
        backend.embed(embedding, batch.tokens(), x);
        backend.rmsNorm(x, layers.get(0).attnNorm, config.normEps(), xb);
        for (int l = 0; l < layers.size(); l++) {
            Layer w = layers.get(l);
            Activation q, k, v;
            if (w.wqkv != null) {
                Activation fused = this.qkv.rows(n);
                backend.matmul(xb, w.wqkv, fused);
                q = fused.columns(0, qDim);
                k = fused.columns(qDim, kvDim);
                v = fused.columns(qDim + kvDim, kvDim);
            } else {
                q = this.q.rows(n);
                k = this.k.rows(n);
                v = this.v.rows(n);
                backend.matmul(xb, w.wq, q);
                backend.matmul(xb, w.wk, k);
                backend.matmul(xb, w.wv, v);
                if (w.bq != null) {
                    backend.addBias(q, w.bq);
                    backend.addBias(k, w.bk);
                    backend.addBias(v, w.bv);
                }
            }
            backend.ropeWriteKv(q, k, v, config.heads(), config.kvHeads(), batch.positions(), rope, kv, l, batch.slots());
            // On a device backend the write is only queued here: a device transport waits on the stream itself.
            if (afterKvWrite != null) afterKvWrite.accept(l);
            backend.attention(q, kv, l, ab, att);
            backend.matmul(att, w.wo, proj);
            backend.addRmsNorm(x, proj, w.ffnNorm, config.normEps(), xb);
            if (w.wGateUp != null) {
                Activation fused = this.gateUp.rows(n);
                backend.matmul(xb, w.wGateUp, fused);
                backend.swigluMatmul(fused.columns(0, hidden), fused.columns(hidden, hidden), gate, w.down, proj);
            } else {
                Activation up = this.up.rows(n);
                backend.matmul(xb, w.gate, gate);
                backend.matmul(xb, w.up, up);
                backend.swigluMatmul(gate, up, gate, w.down, proj);
            }
            if (l + 1 < layers.size()) {
                backend.addRmsNorm(x, proj, layers.get(l + 1).attnNorm, config.normEps(), xb);
            } else {
                backend.add(x, proj);
            }
        }
        int r = batch.logitRows().length;
        if (r == 0) return; // prefill chunks that sample nothing: no logits to compute
        Activation last = lastRows.rows(r), norm = lastNorm.rows(r), out = logits.rows(r);
        backend.gatherRows(x, batch.logitRows(), last);
        backend.rmsNorm(last, finalNorm, config.normEps(), norm);
        backend.matmul(norm, output, out);
    }
}
