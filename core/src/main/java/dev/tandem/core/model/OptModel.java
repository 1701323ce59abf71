package dev.tandem.core.model;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.AttentionBatch;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.Weight;
import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * The OPT forward pass (Zhang et al. 2022; Hugging Face OPTForCausalLM with do_layer_norm_before, i.e. every size but
 * 350m), written once over the {@link Backend} seam with the same paged-KV step contract as {@link LlamaModel}:
 * token embedding plus a learned position embedding (row position + 2), then per layer
 * {@code x += out_proj(attn(LN1(x)))}, {@code x += fc2(relu(fc1(LN2(x))))}, multi-head attention scaled by
 * head_dim^-0.5 without RoPE; a final LayerNorm and the output head tied to the token embedding.
 *
 * <p>Steps always run their ops directly (no CUDA-graph replay yet): OPT serves FlexGen-style batch jobs, where steps
 * are large and launch overhead is small next to them.
 */
public final class OptModel implements DecoderModel {
    private final ModelConfig config;
    private final Backend backend;
    private final Weight embedding, positions, finalNorm, finalNormBias, output;
    private final List<Layer> layers = new ArrayList<>();
    private final int maxTokens;
    private final float attentionScale;

    // Scratch activations sized for the largest step; q/k/v are column views of qkv where the backend stacks them.
    private final Activation x, xb, q, k, v, qkv, att, proj, ffn, lastRows, lastNorm, logits;

    /** wqkv / bqkv are set (and wq, wk, wv / bq, bk, bv null) when the backend stacks the three products. */
    private record Layer(Weight attnNorm, Weight attnNormBias, Weight wq, Weight wk, Weight wv, Weight bq, Weight bk, Weight bv,
                         Weight wqkv, Weight bqkv, Weight wo, Weight bo, Weight ffnNorm, Weight ffnNormBias,
                         Weight fc1, Weight b1, Weight fc2, Weight b2) {}

    /**
     * @param maxTokens most tokens one step may carry (prefill chunk plus decodes)
     * @param maxLogitRows most rows one step may ask logits for
     */
    public OptModel(ModelConfig config, ModelWeights weights, Backend backend, int maxTokens, int maxLogitRows) {
        if (!config.isOpt()) throw new IllegalArgumentException("OptModel runs OPT, not " + config.architecture());
        if (weights.positions() == null || weights.finalNormBias() == null) {
            throw new IllegalArgumentException("OPT weights need the learned position table and the final LayerNorm's bias");
        }
        this.config = config;
        this.backend = backend;
        this.maxTokens = maxTokens;
        this.attentionScale = (float) (1.0 / Math.sqrt(config.headDim()));
        embedding = backend.upload(weights.embedding());
        positions = backend.upload(weights.positions());
        finalNorm = backend.upload(weights.finalNorm());
        finalNormBias = backend.upload(weights.finalNormBias());
        output = weights.output() == weights.embedding() ? embedding : backend.upload(weights.output());
        for (LayerWeights l : weights.layers()) {
            Weight qkvW = backend.uploadStacked(l.wq().name() + "|k|v", List.of(l.wq(), l.wk(), l.wv()));
            Weight qkvB = qkvW == null ? null : backend.upload(concat(l.bq().name() + "|k|v", l.bq(), l.bk(), l.bv()));
            layers.add(new Layer(backend.upload(l.attnNorm()), backend.upload(l.attnNormBias()),
                    qkvW == null ? backend.upload(l.wq()) : null, qkvW == null ? backend.upload(l.wk()) : null,
                    qkvW == null ? backend.upload(l.wv()) : null, qkvW == null ? backend.upload(l.bq()) : null,
                    qkvW == null ? backend.upload(l.bk()) : null, qkvW == null ? backend.upload(l.bv()) : null, qkvW, qkvB,
                    backend.upload(l.wo()), backend.upload(l.bo()), backend.upload(l.ffnNorm()), backend.upload(l.ffnNormBias()),
                    backend.upload(l.up()), backend.upload(l.bUp()), backend.upload(l.down()), backend.upload(l.bDown())));
        }
        boolean stacked = layers.stream().anyMatch(l -> l.wqkv != null), split = layers.stream().anyMatch(l -> l.wqkv == null);
        int d = config.dim();
        x = backend.allocate(maxTokens, d);
        xb = backend.allocate(maxTokens, d);
        q = split ? backend.allocate(maxTokens, d) : null;
        k = split ? backend.allocate(maxTokens, d) : null;
        v = split ? backend.allocate(maxTokens, d) : null;
        qkv = stacked ? backend.allocate(maxTokens, 3 * d) : null;
        att = backend.allocate(maxTokens, d);
        proj = backend.allocate(maxTokens, d);
        ffn = backend.allocate(maxTokens, config.hiddenDim());
        lastRows = backend.allocate(maxLogitRows, d);
        lastNorm = backend.allocate(maxLogitRows, d);
        logits = backend.allocate(maxLogitRows, config.vocabSize());
    }

    /**
     * q|k|v's biases as one f32 vector, for the stacked product. Its memory is left to the garbage collector (a few KiB
     * per layer that the backend copies at upload), so the model owns no arena of its own.
     */
    private static Tensor concat(String name, Tensor... parts) {
        int n = 0;
        for (Tensor t : parts) n += Math.toIntExact(t.elements());
        float[] values = new float[n];
        int at = 0;
        for (Tensor t : parts) {
            int count = Math.toIntExact(t.elements());
            Codec.decode(t.dtype(), t.data(), 0, values, at, count);
            at += count;
        }
        MemorySegment data = Arena.ofAuto().allocateFrom(ValueLayout.JAVA_FLOAT.withOrder(ByteOrder.LITTLE_ENDIAN), values);
        return new Tensor(name, DType.F32, new long[] {n}, data);
    }

    @Override
    public ModelConfig config() { return config; }

    @Override
    public Backend backend() { return backend; }

    @Override
    public int maxTokens() { return maxTokens; }

    @Override
    public Activation forward(StepBatch batch, KvStorage kv, IntConsumer afterKvWrite) {
        batch.check(maxTokens, config.vocabSize());
        for (int p : batch.positions()) {
            if (p < 0 || p >= config.contextLength()) {
                throw new IllegalArgumentException("position " + p + " outside OPT's " + config.contextLength() + " learned positions");
            }
        }
        int r = batch.logitRows().length;
        if (r > logits.rows()) throw new IllegalArgumentException(r + " logit rows; this model was set up for " + logits.rows());
        AttentionBatch ab = new AttentionBatch(batch.seqs(), config.heads(), config.kvHeads(), config.headDim(), attentionScale);
        backend.beginStep(batch.tokens(), batch.positions(), batch.slots(), ab, batch.blockTableStride(kv.layout().blockSize(), config.contextLength()));
        run(batch, ab, kv, afterKvWrite);
        return logits.rows(r);
    }

    /** The step's ops, in order; every array they use is one of the batch's (what beginStep was given). */
    private void run(StepBatch batch, AttentionBatch ab, KvStorage kv, IntConsumer afterKvWrite) {
        int n = batch.size(), d = config.dim();
        float eps = config.normEps();
        Activation x = this.x.rows(n), xb = this.xb.rows(n), att = this.att.rows(n), proj = this.proj.rows(n), ffn = this.ffn.rows(n);
        backend.embed(embedding, batch.tokens(), x);
        backend.addPositionEmbedding(x, positions, batch.positions(), ModelConfig.OPT_POSITION_OFFSET);
        backend.layerNorm(x, layers.get(0).attnNorm, layers.get(0).attnNormBias, eps, xb);
        for (int l = 0; l < layers.size(); l++) {
            Layer w = layers.get(l);
            Activation q, k, v;
            if (w.wqkv != null) {
                Activation fused = this.qkv.rows(n);
                backend.matmul(xb, w.wqkv, fused);
                backend.addBias(fused, w.bqkv);
                q = fused.columns(0, d);
                k = fused.columns(d, d);
                v = fused.columns(2 * d, d);
            } else {
                q = this.q.rows(n);
                k = this.k.rows(n);
                v = this.v.rows(n);
                backend.matmul(xb, w.wq, q);
                backend.matmul(xb, w.wk, k);
                backend.matmul(xb, w.wv, v);
                backend.addBias(q, w.bq);
                backend.addBias(k, w.bk);
                backend.addBias(v, w.bv);
            }
            backend.writeKv(kv, l, k, v, batch.slots());
            // On a device backend the write is only queued here: a device transport waits on the stream itself.
            if (afterKvWrite != null) afterKvWrite.accept(l);
            backend.attention(q, kv, l, ab, att);
            backend.matmul(att, w.wo, proj);
            backend.addBias(proj, w.bo);
            backend.addLayerNorm(x, proj, w.ffnNorm, w.ffnNormBias, eps, xb);
            backend.matmul(xb, w.fc1, ffn);
            backend.addBiasRelu(ffn, w.b1);
            backend.matmul(ffn, w.fc2, proj);
            backend.addBias(proj, w.b2);
            if (l + 1 < layers.size()) {
                Layer next = layers.get(l + 1);
                backend.addLayerNorm(x, proj, next.attnNorm, next.attnNormBias, eps, xb);
            } else {
                backend.add(x, proj);
            }
        }
        int r = batch.logitRows().length;
        Activation last = lastRows.rows(r), norm = lastNorm.rows(r), out = logits.rows(r);
        backend.gatherRows(x, batch.logitRows(), last);
        backend.layerNorm(last, finalNorm, finalNormBias, eps, norm);
        backend.matmul(norm, output, out);
    }
}
