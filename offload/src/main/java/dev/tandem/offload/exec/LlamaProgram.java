package dev.tandem.offload.exec;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.Rope;
import dev.tandem.core.backend.Weight;
import dev.tandem.core.model.LayerWeights;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.ModelWeights;
import dev.tandem.core.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * The Llama-family layer (RMSNorm, RoPE, SwiGLU; Qwen2's q/k/v biases) as {@link LayerProgram}: the same ops in the same
 * order as {@code LlamaModel}, so an offloaded run computes what the in-memory engine computes.
 */
public final class LlamaProgram implements LayerProgram {
    /** Where each layer's tensors come from: a loaded model's, or synthetic ones made in the placement's arena. */
    public interface LayerSource {
        LayerWeights layer(int layer, java.lang.foreign.Arena arena);

        /**
         * This source, making each layer once per arena: a program asks for a layer's matrices and vectors separately,
         * in the same arena, and a synthetic layer is costly to make.
         */
        default LayerSource onePerArena() {
            LayerSource source = this;
            return new LayerSource() {
                private int lastLayer = -1;
                private java.lang.foreign.Arena lastArena;
                private LayerWeights last;

                @Override
                public LayerWeights layer(int layer, java.lang.foreign.Arena arena) {
                    if (layer != lastLayer || arena != lastArena) {
                        last = source.layer(layer, arena);
                        lastLayer = layer;
                        lastArena = arena;
                    }
                    return last;
                }
            };
        }
    }

    private final ModelConfig config;
    private final ModelWeights weights;
    private final LayerSource layers;
    private final boolean stacked;
    private final Rope rope;

    /** @param stacked q|k|v and gate|up as one matrix each (a backend whose activations have column views) */
    public LlamaProgram(ModelConfig config, ModelWeights weights, boolean stacked) {
        this(config, weights, (l, a) -> weights.layers().get(l), stacked);
    }

    /** @param globals embedding, final norm and output head (its layer list is not used) */
    public LlamaProgram(ModelConfig config, ModelWeights globals, LayerSource layers, boolean stacked) {
        this.config = config;
        this.weights = globals;
        this.layers = layers.onePerArena();
        this.stacked = stacked;
        this.rope = config.rope(config.contextLength());
    }

    /** Synthetic weights of {@code synthetic}'s shape. */
    public static LlamaProgram synthetic(SyntheticWeights synthetic, boolean stacked) {
        return new LlamaProgram(synthetic.config(), synthetic.globals(), synthetic::layer, stacked);
    }

    @Override
    public ModelConfig config() { return config; }

    @Override
    public List<Tensor> matrices(int layer, java.lang.foreign.Arena arena) {
        LayerWeights l = layers.layer(layer, arena);
        if (stacked) {
            return List.of(Stacking.rows(arena, l.wq().name() + "|k|v", l.wq(), l.wk(), l.wv()), l.wo(),
                    Stacking.rows(arena, l.gate().name() + "|up", l.gate(), l.up()), l.down());
        }
        return List.of(l.wq(), l.wk(), l.wv(), l.wo(), l.gate(), l.up(), l.down());
    }

    @Override
    public int attentionMatrices() { return stacked ? 2 : 4; }

    @Override
    public int[] parts(int matrix, Tensor t) {
        if (!stacked) return new int[] {t.rows()};
        return switch (matrix) {
            case 0 -> new int[] {config.qDim(), config.kvDim(), config.kvDim()};
            case 2 -> new int[] {config.hiddenDim(), config.hiddenDim()};
            default -> new int[] {t.rows()};
        };
    }

    @Override
    public List<Tensor> vectors(int layer, java.lang.foreign.Arena arena) {
        LayerWeights l = layers.layer(layer, arena);
        List<Tensor> v = new ArrayList<>(List.of(l.attnNorm(), l.ffnNorm()));
        if (l.bq() != null) v.addAll(List.of(l.bq(), l.bk(), l.bv()));
        return v;
    }

    @Override
    public List<Tensor> globals() {
        return List.of(weights.embedding(), weights.finalNorm(), weights.output());
    }

    @Override
    public int embeddingGlobals() { return 1; }

    @Override
    public Rope rope() { return rope; }

    @Override
    public int ffnCols() { return stacked ? 2 * config.hiddenDim() : config.hiddenDim(); }

    @Override
    public void embed(Backend b, Weight[] g, int[] tokens, int[] positions, Activation x) { b.embed(g[0], tokens, x); }

    @Override
    public void beforeAttention(Backend b, Weight[] m, Weight[] v, Activation x, Activation xb, Activation qkv, Activation q, Activation k,
                                Activation vOut) {
        b.rmsNorm(x, v[0], config.normEps(), xb);
        if (stacked) {
            b.matmul(xb, m[0], qkv);
            if (v.length > 2) throw new OffloadException("q/k/v biases need separate products: not stacked on this path");
            return;
        }
        b.matmul(xb, m[0], q);
        b.matmul(xb, m[1], k);
        b.matmul(xb, m[2], vOut);
        if (v.length > 2) {
            b.addBias(q, v[2]);
            b.addBias(k, v[3]);
            b.addBias(vOut, v[4]);
        }
    }

    @Override
    public void afterAttention(Backend b, Weight[] m, Weight[] v, Activation att, Activation x, Activation xb, Activation proj,
                               Activation ffn, Activation ffn2) {
        int o = stacked ? 1 : 3;
        b.matmul(att, m[o], proj);
        b.addRmsNorm(x, proj, v[1], config.normEps(), xb);
        int hidden = config.hiddenDim();
        if (stacked) {
            b.matmul(xb, m[2], ffn);
            b.swigluMatmul(ffn.columns(0, hidden), ffn.columns(hidden, hidden), ffn2, m[3], proj);
        } else {
            b.matmul(xb, m[4], ffn);
            b.matmul(xb, m[5], ffn2);
            b.swigluMatmul(ffn, ffn2, ffn, m[6], proj);
        }
        b.add(x, proj);
    }

    @Override
    public void logits(Backend b, Weight[] g, Activation x, Activation norm, Activation logits) {
        b.rmsNorm(x, g[1], config.normEps(), norm);
        b.matmul(norm, g[2], logits);
    }
}
