package dev.tandem.core.format;

import dev.tandem.core.format.hf.OptLayout;
import dev.tandem.core.model.LayerWeights;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.ModelWeights;
import dev.tandem.core.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Finds a Llama-family (or OPT) model's tensors by their names in one file format and checks every shape against the
 * configuration, so a mismatch is reported by name before any compute.
 */
public final class WeightBinder {

    /** The tensor names of one file format. */
    public interface Names {
        String embedding();
        String finalNorm();
        String output();
        String layer(int layer, Part part);
    }

    public enum Part { ATTN_NORM, WQ, WK, WV, WO, BQ, BK, BV, FFN_NORM, GATE, UP, DOWN }

    public static final Names HUGGING_FACE = new Names() {
        public String embedding() { return "model.embed_tokens.weight"; }
        public String finalNorm() { return "model.norm.weight"; }
        public String output() { return "lm_head.weight"; }
        public String layer(int l, Part p) {
            String pre = "model.layers." + l + ".";
            return pre + switch (p) {
                case ATTN_NORM -> "input_layernorm.weight";
                case WQ -> "self_attn.q_proj.weight";
                case WK -> "self_attn.k_proj.weight";
                case WV -> "self_attn.v_proj.weight";
                case WO -> "self_attn.o_proj.weight";
                case BQ -> "self_attn.q_proj.bias";
                case BK -> "self_attn.k_proj.bias";
                case BV -> "self_attn.v_proj.bias";
                case FFN_NORM -> "post_attention_layernorm.weight";
                case GATE -> "mlp.gate_proj.weight";
                case UP -> "mlp.up_proj.weight";
                case DOWN -> "mlp.down_proj.weight";
            };
        }
    };

    public static final Names GGUF = new Names() {
        public String embedding() { return "token_embd.weight"; }
        public String finalNorm() { return "output_norm.weight"; }
        public String output() { return "output.weight"; }
        public String layer(int l, Part p) {
            String pre = "blk." + l + ".";
            return pre + switch (p) {
                case ATTN_NORM -> "attn_norm.weight";
                case WQ -> "attn_q.weight";
                case WK -> "attn_k.weight";
                case WV -> "attn_v.weight";
                case WO -> "attn_output.weight";
                case BQ -> "attn_q.bias";
                case BK -> "attn_k.bias";
                case BV -> "attn_v.bias";
                case FFN_NORM -> "ffn_norm.weight";
                case GATE -> "ffn_gate.weight";
                case UP -> "ffn_up.weight";
                case DOWN -> "ffn_down.weight";
            };
        }
    };

    private final Map<String, Tensor> tensors;
    private final Map<String, String> fileOf;
    private final String configName;

    /**
     * @param tensors    every tensor by name
     * @param fileOf     the file each tensor came from, for messages
     * @param configName where the expected shapes come from ("config.json", "GGUF metadata", ...)
     */
    public WeightBinder(Map<String, Tensor> tensors, Map<String, String> fileOf, String configName) {
        this.tensors = tensors;
        this.fileOf = fileOf;
        this.configName = configName;
    }

    public ModelWeights bind(ModelConfig c, Names n) {
        Tensor embedding = require(n.embedding(), c.vocabSize(), c.dim());
        List<LayerWeights> layers = new ArrayList<>();
        for (int l = 0; l < c.layers(); l++) {
            final int layer = l;
            java.util.function.Function<Part, String> name = p -> n.layer(layer, p);
            layers.add(new LayerWeights(
                    require(name.apply(Part.ATTN_NORM), c.dim()),
                    require(name.apply(Part.WQ), c.qDim(), c.dim()),
                    require(name.apply(Part.WK), c.kvDim(), c.dim()),
                    require(name.apply(Part.WV), c.kvDim(), c.dim()),
                    require(name.apply(Part.WO), c.dim(), c.qDim()),
                    c.qkvBias() ? require(name.apply(Part.BQ), c.qDim()) : null,
                    c.qkvBias() ? require(name.apply(Part.BK), c.kvDim()) : null,
                    c.qkvBias() ? require(name.apply(Part.BV), c.kvDim()) : null,
                    require(name.apply(Part.FFN_NORM), c.dim()),
                    require(name.apply(Part.GATE), c.hiddenDim(), c.dim()),
                    require(name.apply(Part.UP), c.hiddenDim(), c.dim()),
                    require(name.apply(Part.DOWN), c.dim(), c.hiddenDim())));
        }
        Tensor finalNorm = require(n.finalNorm(), c.dim());
        Tensor output = c.tiedEmbeddings() ? embedding : require(n.output(), c.vocabSize(), c.dim());
        return new ModelWeights(embedding, layers, finalNorm, output);
    }

    /**
     * An OPT model's tensors (Hugging Face names, under "model.decoder." or, for a checkpoint saved from a bare
     * OPTModel, "decoder."); the output head is the token embedding (OPT ties them).
     */
    public ModelWeights bindOpt(ModelConfig c) {
        OptLayout n = !tensors.containsKey(OptLayout.CAUSAL_LM.embedding()) && tensors.containsKey(OptLayout.BARE.embedding())
                ? OptLayout.BARE : OptLayout.CAUSAL_LM;
        Tensor embedding = require(n.embedding(), c.vocabSize(), c.dim());
        Tensor positions = require(n.positions(), OptLayout.positionRows(c), c.dim());
        List<LayerWeights> layers = new ArrayList<>();
        for (int l = 0; l < c.layers(); l++) {
            final int layer = l;
            java.util.function.Function<OptLayout.Part, Tensor> t = p -> require(n.layer(layer, p), p.shape(c));
            layers.add(LayerWeights.opt(t.apply(OptLayout.Part.ATTN_NORM), t.apply(OptLayout.Part.ATTN_NORM_BIAS),
                    t.apply(OptLayout.Part.Q), t.apply(OptLayout.Part.Q_BIAS), t.apply(OptLayout.Part.K), t.apply(OptLayout.Part.K_BIAS),
                    t.apply(OptLayout.Part.V), t.apply(OptLayout.Part.V_BIAS), t.apply(OptLayout.Part.OUT), t.apply(OptLayout.Part.OUT_BIAS),
                    t.apply(OptLayout.Part.FFN_NORM), t.apply(OptLayout.Part.FFN_NORM_BIAS), t.apply(OptLayout.Part.FC1),
                    t.apply(OptLayout.Part.FC1_BIAS), t.apply(OptLayout.Part.FC2), t.apply(OptLayout.Part.FC2_BIAS)));
        }
        Tensor finalNorm = require(n.finalNorm(), c.dim()), finalNormBias = require(n.finalNormBias(), c.dim());
        return new ModelWeights(embedding, layers, finalNorm, embedding, positions, finalNormBias);
    }

    public Tensor require(String name, long... shape) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new ModelFormatException(where(name) + "missing tensor '" + name + "' (" + configName + " implies shape "
                    + Arrays.toString(shape) + ")");
        }
        // A vector may be stored as [n] or [1, n].
        boolean ok = Arrays.equals(t.shape(), shape)
                || (shape.length == 1 && t.shape().length == 2 && t.shape()[0] == 1 && t.shape()[1] == shape[0]);
        if (!ok) {
            throw new ModelFormatException(where(name) + "tensor '" + name + "' has shape " + t.shapeString() + ", "
                    + configName + " implies " + Arrays.toString(shape));
        }
        return t;
    }

    private String where(String name) {
        String f = fileOf.get(name);
        return f != null ? f + ": " : "";
    }
}
