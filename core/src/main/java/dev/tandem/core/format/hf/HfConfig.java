package dev.tandem.core.format.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.core.backend.Rope;
import dev.tandem.core.format.ModelFormatException;
import dev.tandem.core.model.ModelConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Reads a Hugging Face config.json of a Llama, Mistral, Qwen2 or OPT causal LM. */
public final class HfConfig {
    private HfConfig() {}

    public static ModelConfig read(Path configJson) {
        JsonNode c;
        try {
            c = new ObjectMapper().readTree(Files.readString(configJson));
        } catch (IOException e) {
            throw new ModelFormatException(configJson + ": cannot parse: " + e.getMessage());
        }
        if (c == null || !c.isObject()) throw new ModelFormatException(configJson + ": not a JSON object");
        String where = configJson.getFileName().toString();
        String archClass = c.path("architectures").path(0).asText("");
        if (archClass.equals("OPTForCausalLM") || (archClass.isEmpty() && c.path("model_type").asText("").equals("opt"))) return opt(c, where);
        String arch = switch (archClass) {
            case "LlamaForCausalLM" -> "llama";
            case "MistralForCausalLM" -> "mistral";
            case "Qwen2ForCausalLM" -> "qwen2";
            default -> throw new ModelFormatException(where + ": unsupported architecture '" + archClass
                    + "' in 'architectures'; supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, OPTForCausalLM");
        };
        int dim = positive(c, "hidden_size", where);
        int heads = positive(c, "num_attention_heads", where);
        int kvHeads = c.has("num_key_value_heads") && !c.get("num_key_value_heads").isNull()
                ? positive(c, "num_key_value_heads", where) : heads;
        int headDim = c.has("head_dim") && !c.get("head_dim").isNull() ? positive(c, "head_dim", where) : dim / heads;
        JsonNode ropeParams = c.path("rope_parameters");
        double theta = c.has("rope_theta") ? c.get("rope_theta").asDouble()
                : ropeParams.path("rope_theta").asDouble(arch.equals("qwen2") ? 1_000_000 : 10_000);
        float[] invFreq = Rope.invFreq(headDim, theta);
        JsonNode scaling = c.path("rope_scaling");
        if (scaling.isMissingNode() || scaling.isNull()) scaling = ropeParams;
        String ropeType = scaling.path("rope_type").asText(scaling.path("type").asText("default"));
        switch (ropeType) {
            case "default", "" -> { }
            case "llama3" -> invFreq = Rope.llama3Scaled(invFreq,
                    scaling.path("factor").asDouble(8), scaling.path("low_freq_factor").asDouble(1),
                    scaling.path("high_freq_factor").asDouble(4),
                    scaling.path("original_max_position_embeddings").asDouble(8192));
            default -> throw new ModelFormatException(where + ": rope_scaling type '" + ropeType + "' is not supported (supported: default, llama3)");
        }
        boolean tied = c.path("tie_word_embeddings").asBoolean(false);
        boolean bias = arch.equals("qwen2") || c.path("attention_bias").asBoolean(false);
        int window = c.path("sliding_window").isInt() && c.path("use_sliding_window").asBoolean(!arch.equals("qwen2"))
                ? c.path("sliding_window").asInt() : 0;
        JsonNode eosNode = c.path("eos_token_id");
        int eos = eosNode.isArray() ? eosNode.path(0).asInt(-1) : eosNode.asInt(-1);
        return new ModelConfig(arch, dim, positive(c, "intermediate_size", where), positive(c, "num_hidden_layers", where),
                heads, kvHeads, headDim, positive(c, "vocab_size", where),
                c.path("max_position_embeddings").asInt(4096), (float) c.path("rms_norm_eps").asDouble(1e-6),
                Rope.Style.HALF, theta, invFreq, tied, bias, window, c.path("bos_token_id").asInt(-1), eos);
    }

    /**
     * OPT (pre-LayerNorm, ReLU, biases, learned positions, tied output). The variants OptModel does not implement are
     * refused here, naming the field: opt-350m's post-LayerNorm and its 512-wide embedding projected to 1024.
     */
    private static ModelConfig opt(JsonNode c, String where) {
        int dim = positive(c, "hidden_size", where);
        int heads = positive(c, "num_attention_heads", where);
        if (dim % heads != 0) throw new ModelFormatException(where + ": hidden_size " + dim + " is not a multiple of num_attention_heads " + heads);
        if (!c.path("do_layer_norm_before").asBoolean(true)) {
            throw new ModelFormatException(where + ": do_layer_norm_before=false (opt-350m's post-LayerNorm) is not supported; every other OPT size is pre-LayerNorm");
        }
        int proj = c.path("word_embed_proj_dim").asInt(dim);
        if (proj != dim) {
            throw new ModelFormatException(where + ": word_embed_proj_dim " + proj + " differs from hidden_size " + dim
                    + " (opt-350m's projected embeddings), which is not supported");
        }
        String act = c.path("activation_function").asText("relu");
        if (!act.equals("relu")) throw new ModelFormatException(where + ": activation_function '" + act + "' is not supported for OPT (only relu)");
        if (!c.path("enable_bias").asBoolean(true) || !c.path("layer_norm_elementwise_affine").asBoolean(true)
                || c.path("_remove_final_layer_norm").asBoolean(false)) {
            throw new ModelFormatException(where + ": OPT without biases, without LayerNorm weights or without its final LayerNorm is not supported");
        }
        JsonNode eosNode = c.path("eos_token_id");
        int eos = eosNode.isArray() ? eosNode.path(0).asInt(-1) : eosNode.asInt(-1);
        // nn.LayerNorm's default epsilon: OPT's config has no field for it.
        return ModelConfig.opt(dim, positive(c, "ffn_dim", where), positive(c, "num_hidden_layers", where), heads,
                positive(c, "vocab_size", where), positive(c, "max_position_embeddings", where), 1e-5f, c.path("bos_token_id").asInt(-1), eos);
    }

    private static int positive(JsonNode c, String field, String where) {
        JsonNode n = c.get(field);
        if (n == null || !n.canConvertToInt() || n.asInt() <= 0) {
            throw new ModelFormatException(where + ": field '" + field + "' must be a positive integer, got " + (n == null ? "nothing" : n.toString()));
        }
        return n.asInt();
    }
}
