package dev.tandem.offload.exec;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.Rope;
import dev.tandem.core.backend.Weight;
import dev.tandem.core.model.LayerWeights;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.ModelWeights;
import dev.tandem.core.tensor.Tensor;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;

/**
 * The OPT layer (pre-LayerNorm, learned positions, biased projections, ReLU FFN) as {@link LayerProgram}: the ops of
 * {@code OptModel} in the same order, FlexGen's own architecture for side-by-side runs.
 */
public final class OptProgram implements LayerProgram {
    private final ModelConfig config;
    private final ModelWeights globals;
    private final LlamaProgram.LayerSource layers;
    private final boolean stacked;

    public OptProgram(ModelConfig config, ModelWeights weights, boolean stacked) {
        this(config, weights, (l, a) -> weights.layers().get(l), stacked);
    }

    /** @param globals embeddings, positions, final norm and its bias (its layer list is not used) */
    public OptProgram(ModelConfig config, ModelWeights globals, LlamaProgram.LayerSource layers, boolean stacked) {
        if (!config.isOpt()) throw new OffloadException("OptProgram runs OPT models, not " + config.architecture());
        this.config = config;
        this.globals = globals;
        this.layers = layers.onePerArena();
        this.stacked = stacked;
    }

    /** The program for a model's architecture. */
    public static LayerProgram of(ModelConfig config, ModelWeights weights, boolean stacked) {
        return config.isOpt() ? new OptProgram(config, weights, stacked) : new LlamaProgram(config, weights, stacked);
    }

    /** Synthetic weights of {@code synthetic}'s shape, for either architecture. */
    public static LayerProgram synthetic(SyntheticWeights synthetic, boolean stacked) {
        return synthetic.config().isOpt() ? new OptProgram(synthetic.config(), synthetic.globals(), synthetic::layer, stacked)
                : LlamaProgram.synthetic(synthetic, stacked);
    }

    @Override
    public ModelConfig config() { return config; }

    @Override
    public List<Tensor> matrices(int layer, Arena arena) {
        LayerWeights l = layers.layer(layer, arena);
        if (stacked) return List.of(Stacking.rows(arena, l.wq().name() + "|k|v", l.wq(), l.wk(), l.wv()), l.wo(), l.up(), l.down());
        return List.of(l.wq(), l.wk(), l.wv(), l.wo(), l.up(), l.down());
    }

    @Override
    public int attentionMatrices() { return stacked ? 2 : 4; }

    @Override
    public int[] parts(int matrix, Tensor t) {
        return stacked && matrix == 0 ? new int[] {config.qDim(), config.kvDim(), config.kvDim()} : new int[] {t.rows()};
    }

    /** attn norm γ, β; [q|k|v bias] or [q, k, v biases]; out bias; ffn norm γ, β; fc1 bias; fc2 bias. */
    @Override
    public List<Tensor> vectors(int layer, Arena arena) {
        LayerWeights l = layers.layer(layer, arena);
        List<Tensor> v = new ArrayList<>(List.of(l.attnNorm(), l.attnNormBias()));
        if (stacked) v.add(dev.tandem.core.model.OptLayer.concatVectors(arena, l.bq().name() + "|k|v", l.bq(), l.bk(), l.bv()));
        else v.addAll(List.of(l.bq(), l.bk(), l.bv()));
        v.addAll(List.of(l.bo(), l.ffnNorm(), l.ffnNormBias(), l.bUp(), l.bDown()));
        return v;
    }

    /** embedding, positions, final norm γ, β, output head. */
    @Override
    public List<Tensor> globals() {
        return List.of(globals.embedding(), globals.positions(), globals.finalNorm(), globals.finalNormBias(), globals.output());
    }

    @Override
    public int embeddingGlobals() { return 2; }

    @Override
    public Rope rope() { return null; }

    @Override
    public int ffnCols() { return config.hiddenDim(); }

    @Override
    public void embed(Backend b, Weight[] g, int[] tokens, int[] positions, Activation x) {
        b.embed(g[0], tokens, x);
        b.addPositionEmbedding(x, g[1], positions, ModelConfig.OPT_POSITION_OFFSET);
    }

    @Override
    public void beforeAttention(Backend b, Weight[] m, Weight[] v, Activation x, Activation xb, Activation qkv, Activation q, Activation k,
                                Activation vOut) {
        float eps = config.normEps();
        b.layerNorm(x, v[0], v[1], eps, xb);
        if (stacked) {
            b.matmul(xb, m[0], qkv);
            b.addBias(qkv, v[2]);
            return;
        }
        b.matmul(xb, m[0], q);
        b.matmul(xb, m[1], k);
        b.matmul(xb, m[2], vOut);
        b.addBias(q, v[2]);
        b.addBias(k, v[3]);
        b.addBias(vOut, v[4]);
    }

    @Override
    public void afterAttention(Backend b, Weight[] m, Weight[] v, Activation att, Activation x, Activation xb, Activation proj,
                               Activation ffn, Activation ffn2) {
        int o = stacked ? 1 : 3, vo = stacked ? 3 : 5;
        float eps = config.normEps();
        b.matmul(att, m[o], proj);
        b.addBias(proj, v[vo]);
        b.addLayerNorm(x, proj, v[vo + 1], v[vo + 2], eps, xb);
        b.matmul(xb, m[o + 1], ffn);
        b.addBiasRelu(ffn, v[vo + 3]);
        b.matmul(ffn, m[o + 2], proj);
        b.addBias(proj, v[vo + 4]);
        b.add(x, proj);
    }

    @Override
    public void logits(Backend b, Weight[] g, Activation x, Activation norm, Activation logits) {
        b.layerNorm(x, g[2], g[3], config.normEps(), norm);
        b.matmul(norm, g[4], logits);
    }
}
