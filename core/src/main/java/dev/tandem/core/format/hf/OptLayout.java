package dev.tandem.core.format.hf;

import dev.tandem.core.model.ModelConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * The tensors of a Hugging Face OPTForCausalLM checkpoint: names and shapes, in the order transformers saves them.
 * One place for both directions, so that the reader ({@link dev.tandem.core.format.WeightBinder}) and the writer
 * ({@link HfModelWriter}) cannot disagree. lm_head.weight is tied to the token embedding and not stored.
 *
 * @param prefix "model.decoder." for OPTForCausalLM; "decoder." for checkpoints saved from a bare OPTModel
 */
public record OptLayout(String prefix) {
    public static final OptLayout CAUSAL_LM = new OptLayout("model.decoder."), BARE = new OptLayout("decoder.");

    /** One layer's tensors; {@code matrix} ones are [rows, dim] or [dim, ffn], the others vectors of one width. */
    public enum Part {
        K("self_attn.k_proj.weight"), K_BIAS("self_attn.k_proj.bias"),
        V("self_attn.v_proj.weight"), V_BIAS("self_attn.v_proj.bias"),
        Q("self_attn.q_proj.weight"), Q_BIAS("self_attn.q_proj.bias"),
        OUT("self_attn.out_proj.weight"), OUT_BIAS("self_attn.out_proj.bias"),
        ATTN_NORM("self_attn_layer_norm.weight"), ATTN_NORM_BIAS("self_attn_layer_norm.bias"),
        FC1("fc1.weight"), FC1_BIAS("fc1.bias"),
        FC2("fc2.weight"), FC2_BIAS("fc2.bias"),
        FFN_NORM("final_layer_norm.weight"), FFN_NORM_BIAS("final_layer_norm.bias");

        public final String suffix;

        Part(String suffix) { this.suffix = suffix; }

        /** The shape config.json implies for this part. */
        public long[] shape(ModelConfig c) {
            return switch (this) {
                case Q, K, V, OUT -> new long[] {c.dim(), c.dim()};
                case FC1 -> new long[] {c.hiddenDim(), c.dim()};
                case FC2 -> new long[] {c.dim(), c.hiddenDim()};
                case FC1_BIAS -> new long[] {c.hiddenDim()};
                default -> new long[] {c.dim()};
            };
        }
    }

    /** A tensor's name and shape. */
    public record Entry(String name, long[] shape) {}

    public String embedding() { return prefix + "embed_tokens.weight"; }

    public String positions() { return prefix + "embed_positions.weight"; }

    public String finalNorm() { return prefix + "final_layer_norm.weight"; }

    public String finalNormBias() { return prefix + "final_layer_norm.bias"; }

    public String layer(int l, Part p) { return prefix + "layers." + l + "." + p.suffix; }

    /** Rows of the learned position table: the context plus OPT's offset of 2. */
    public static long positionRows(ModelConfig c) { return (long) c.contextLength() + ModelConfig.OPT_POSITION_OFFSET; }

    /** Every stored tensor, in transformers' order (the decoder's own tensors before its layers, as it defines them). */
    public List<Entry> tensors(ModelConfig c) {
        List<Entry> out = new ArrayList<>();
        out.add(new Entry(embedding(), new long[] {c.vocabSize(), c.dim()}));
        out.add(new Entry(positions(), new long[] {positionRows(c), c.dim()}));
        out.add(new Entry(finalNorm(), new long[] {c.dim()}));
        out.add(new Entry(finalNormBias(), new long[] {c.dim()}));
        for (int l = 0; l < c.layers(); l++) {
            for (Part p : Part.values()) out.add(new Entry(layer(l, p), p.shape(c)));
        }
        return out;
    }
}
