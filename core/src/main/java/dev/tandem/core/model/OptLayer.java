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
import java.util.List;
import java.util.function.IntConsumer;

/**
 * One OPT decoder layer over the {@link Backend} seam: {@code x += out_proj(attn(LN1(x)))}, then
 * {@code x += fc2(relu(fc1(LN2(x))))}, for every row of a step. A class of its own, self-contained (it normalises its
 * input and adds its output), so that an executor that moves weights between tiers (FlexGen's block schedule) can run
 * layer by layer with weights it placed itself ({@link #OptLayer(Backend, ModelConfig, Weights)}).
 */
public final class OptLayer {
    /** A layer's weights on a backend; wqkv / bqkv are set (wq, wk, wv, bq, bk, bv null) when the backend stacks q|k|v. */
    public record Weights(Weight attnNorm, Weight attnNormBias, Weight wq, Weight wk, Weight wv, Weight bq, Weight bk, Weight bv,
                          Weight wqkv, Weight bqkv, Weight wo, Weight bo, Weight ffnNorm, Weight ffnNormBias,
                          Weight fc1, Weight b1, Weight fc2, Weight b2) {
        public boolean stacked() { return wqkv != null; }
    }

    /** The per-step activations a layer writes besides the residual stream, for steps of up to maxTokens rows. */
    public static final class Scratch {
        final Activation xb, q, k, v, qkv, att, proj, ffn;

        /** @param stacked whether the layers it serves stack q|k|v (one product), else q, k, v get buffers of their own */
        public Scratch(Backend backend, ModelConfig c, int maxTokens, boolean stacked) {
            int d = c.dim();
            xb = backend.allocate(maxTokens, d);
            q = stacked ? null : backend.allocate(maxTokens, d);
            k = stacked ? null : backend.allocate(maxTokens, d);
            v = stacked ? null : backend.allocate(maxTokens, d);
            qkv = stacked ? backend.allocate(maxTokens, 3 * d) : null;
            att = backend.allocate(maxTokens, d);
            proj = backend.allocate(maxTokens, d);
            ffn = backend.allocate(maxTokens, c.hiddenDim());
        }
    }

    private final Backend backend;
    private final Weights w;
    private final float eps;
    private final int dim;

    /** Uploads the layer's tensors to {@code backend} (q|k|v stacked where the backend prefers). */
    public OptLayer(Backend backend, ModelConfig config, LayerWeights l) {
        this(backend, config, upload(backend, l));
    }

    /** A layer over weights already on {@code backend}. */
    public OptLayer(Backend backend, ModelConfig config, Weights weights) {
        this.backend = backend;
        this.w = weights;
        this.eps = config.normEps();
        this.dim = config.dim();
    }

    public Weights weights() { return w; }

    public static Weights upload(Backend backend, LayerWeights l) {
        Weight qkv = backend.uploadStacked(l.wq().name() + "|k|v", List.of(l.wq(), l.wk(), l.wv()));
        boolean split = qkv == null;
        return new Weights(backend.upload(l.attnNorm()), backend.upload(l.attnNormBias()),
                split ? backend.upload(l.wq()) : null, split ? backend.upload(l.wk()) : null, split ? backend.upload(l.wv()) : null,
                split ? backend.upload(l.bq()) : null, split ? backend.upload(l.bk()) : null, split ? backend.upload(l.bv()) : null,
                qkv, split ? null : backend.upload(concatVectors(Arena.ofAuto(), l.bq().name() + "|k|v", l.bq(), l.bk(), l.bv())),
                backend.upload(l.wo()), backend.upload(l.bo()), backend.upload(l.ffnNorm()), backend.upload(l.ffnNormBias()),
                backend.upload(l.up()), backend.upload(l.bUp()), backend.upload(l.down()), backend.upload(l.bDown()));
    }

    /**
     * 1-D tensors (q|k|v's biases) as one f32 vector in {@code arena}, for the stacked product. The layer passes an
     * automatic arena (a few KiB per layer that the backend copies at upload); the offload executor its layer's arena.
     */
    public static Tensor concatVectors(Arena arena, String name, Tensor... parts) {
        int n = 0;
        for (Tensor t : parts) n += Math.toIntExact(t.elements());
        float[] values = new float[n];
        int at = 0;
        for (Tensor t : parts) {
            int count = Math.toIntExact(t.elements());
            Codec.decode(t.dtype(), t.data(), 0, values, at, count);
            at += count;
        }
        MemorySegment data = arena.allocateFrom(ValueLayout.JAVA_FLOAT.withOrder(ByteOrder.LITTLE_ENDIAN), values);
        return new Tensor(name, DType.F32, new long[] {n}, data);
    }

    /**
     * Runs the layer on the step's rows of the residual stream {@code x} (updated in place), writing the step's keys and
     * values into layer {@code index} of {@code kv}, then calling {@code afterKvWrite} (if not null) with {@code index}.
     * The step's metadata must be the backend's current step ({@link Backend#beginStep}).
     */
    public void forward(Activation x, Scratch s, StepBatch batch, AttentionBatch ab, KvStorage kv, int index, IntConsumer afterKvWrite) {
        int n = batch.size();
        Activation xb = s.xb.rows(n), att = s.att.rows(n), proj = s.proj.rows(n), ffn = s.ffn.rows(n);
        backend.layerNorm(x, w.attnNorm, w.attnNormBias, eps, xb);
        Activation q, k, v;
        if (w.stacked()) {
            Activation fused = s.qkv.rows(n);
            backend.matmul(xb, w.wqkv, fused);
            backend.addBias(fused, w.bqkv);
            q = fused.columns(0, dim);
            k = fused.columns(dim, dim);
            v = fused.columns(2 * dim, dim);
        } else {
            q = s.q.rows(n);
            k = s.k.rows(n);
            v = s.v.rows(n);
            backend.matmul(xb, w.wq, q);
            backend.matmul(xb, w.wk, k);
            backend.matmul(xb, w.wv, v);
            backend.addBias(q, w.bq);
            backend.addBias(k, w.bk);
            backend.addBias(v, w.bv);
        }
        backend.writeKv(kv, index, k, v, batch.slots());
        // On a device backend the write is only queued here: a device transport waits on the stream itself.
        if (afterKvWrite != null) afterKvWrite.accept(index);
        backend.attention(q, kv, index, ab, att);
        backend.matmul(att, w.wo, proj);
        backend.addBias(proj, w.bo);
        backend.addLayerNorm(x, proj, w.ffnNorm, w.ffnNormBias, eps, xb);
        backend.matmul(xb, w.fc1, ffn);
        backend.addBiasRelu(ffn, w.b1);
        backend.matmul(ffn, w.fc2, proj);
        backend.addBias(proj, w.b2);
        backend.add(x, proj);
    }
}
