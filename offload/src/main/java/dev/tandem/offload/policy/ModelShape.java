package dev.tandem.offload.policy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.core.format.hf.HfConfig;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.OptShapes;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The sizes of a decoder that the cost model needs, nothing more: no weights, no tokenizer. Known shapes by name (the
 * OPT family from core's {@link OptShapes}, the sizes of FlexGen's {@code opt_config.py}; the Llama 2 / 3 family as
 * Hugging Face publishes it), or read from a model directory's config.json.
 *
 * @param layers          decoder layers
 * @param hidden          hidden size (FlexGen's h1)
 * @param heads           query heads
 * @param kvHeads         key/value heads (heads for OPT and Llama 2 7B/13B; fewer with grouped-query attention)
 * @param ffn             MLP inner size (FlexGen's h2)
 * @param mlpMatrices     2 for OPT's fc1/fc2, 3 for Llama's gate/up/down
 * @param vocab           vocabulary size
 * @param maxSeqLen       longest context the model was trained for
 * @param bytesPerWeight  bytes of one weight, KV or activation element as stored uncompressed (2 for fp16 / bf16)
 */
public record ModelShape(String name, int layers, int hidden, int heads, int kvHeads, int ffn, int mlpMatrices,
                         int vocab, int maxSeqLen, int bytesPerWeight) {

    public ModelShape {
        if (layers < 1 || hidden < 1 || heads < 1 || kvHeads < 1 || ffn < 1 || vocab < 1 || bytesPerWeight < 1
                || mlpMatrices < 2 || mlpMatrices > 3 || hidden % heads != 0 || heads % kvHeads != 0) {
            throw new IllegalArgumentException("model shape " + name + ": inconsistent sizes (layers " + layers + ", hidden "
                    + hidden + ", heads " + heads + "/" + kvHeads + ", ffn " + ffn + ", vocab " + vocab + ")");
        }
    }

    /** Llama shapes by name (Hugging Face's config.json of meta-llama's checkpoints); OPT's come from {@link OptShapes}. */
    private static final Map<String, ModelShape> LLAMA = new LinkedHashMap<>();

    static {
        llama(new ModelShape("llama-2-7b", 32, 4096, 32, 32, 11008, 3, 32000, 4096, 2));
        llama(new ModelShape("llama-2-13b", 40, 5120, 40, 40, 13824, 3, 32000, 4096, 2));
        llama(new ModelShape("llama-2-70b", 80, 8192, 64, 8, 28672, 3, 32000, 4096, 2));
        llama(new ModelShape("llama-3-8b", 32, 4096, 32, 8, 14336, 3, 128256, 8192, 2));
        llama(new ModelShape("llama-3-70b", 80, 8192, 64, 8, 28672, 3, 128256, 8192, 2));
    }

    private static void llama(ModelShape s) { LLAMA.put(s.name, s); }

    /** The names {@link #known} accepts. */
    public static List<String> knownNames() {
        List<String> names = new ArrayList<>(OptShapes.names());
        names.addAll(LLAMA.keySet());
        return names;
    }

    /** A known shape by name ("opt-30b", "facebook/opt-30b", "llama-3-70b"; case-insensitive), in fp16. */
    public static ModelShape known(String name) {
        String key = name.toLowerCase(Locale.ROOT);
        if (key.contains("/")) key = key.substring(key.lastIndexOf('/') + 1);
        key = key.replace("llama2", "llama-2").replace("llama3", "llama-3");
        ModelConfig opt = OptShapes.of(key);
        if (opt != null) return of(key, opt, 2);
        ModelShape s = LLAMA.get(key);
        if (s == null) {
            throw new IllegalArgumentException("unknown model '" + name + "': not a directory with a config.json, nor one of the known shapes "
                    + String.join(", ", knownNames()));
        }
        return s;
    }

    /** The shape of a parsed config (OPT's two MLP matrices, the Llama family's three). */
    public static ModelShape of(String name, ModelConfig m, int bytesPerWeight) {
        if (m.qDim() != m.dim()) {
            throw new IllegalArgumentException(name + ": head_dim * num_attention_heads (" + m.qDim() + ") != hidden_size ("
                    + m.dim() + "): the cost model assumes they are equal");
        }
        return new ModelShape(name, m.layers(), m.dim(), m.heads(), m.kvHeads(), m.hiddenDim(), m.isOpt() ? 2 : 3, m.vocabSize(),
                m.contextLength(), bytesPerWeight);
    }

    /** A model directory (its config.json), a config.json file, or else a known name. */
    public static ModelShape resolve(String pathOrName) {
        Path p = Path.of(pathOrName);
        if (Files.isDirectory(p)) {
            Path config = p.resolve("config.json");
            if (!Files.isRegularFile(config)) throw new IllegalArgumentException(p + ": no config.json in this directory");
            return fromConfig(config);
        }
        return Files.isRegularFile(p) ? fromConfig(p) : known(pathOrName);
    }

    /** Reads a Hugging Face config.json (OPT or a Llama-family causal LM) through core's parser, plus its dtype. */
    public static ModelShape fromConfig(Path configJson) {
        ModelConfig m = HfConfig.read(configJson);
        String dtype;
        try {
            JsonNode c = new ObjectMapper().readTree(Files.readString(configJson));
            dtype = c.path("torch_dtype").asText(c.path("dtype").asText("float16"));
        } catch (IOException e) {
            throw new IllegalArgumentException(configJson + ": cannot read: " + e.getMessage(), e);
        }
        return of(configJson.toAbsolutePath().getParent().getFileName().toString(), m, dtype.equals("float32") ? 4 : 2);
    }

    public int headDim() { return hidden / heads; }

    public int kvDim() { return kvHeads * headDim(); }

    /** Weight parameters of one decoder layer (attention projections and MLP; biases and norms are noise). */
    public long layerParameters() {
        return (long) hidden * hidden * 2 + 2L * hidden * kvDim() + (long) mlpMatrices * hidden * ffn;
    }

    /** Uncompressed bytes of one layer's weights (FlexGen's wi = 8 h1^2 + 4 h1 h2 for OPT in fp16). */
    public double layerWeightBytes() { return (double) layerParameters() * bytesPerWeight; }

    /** Uncompressed K and V bytes of one token in one layer (FlexGen's 4 h1 for OPT in fp16). */
    public double kvBytesPerToken() { return 2.0 * kvDim() * bytesPerWeight; }

    /** Bytes of one token's hidden state (FlexGen's 2 h1). */
    public double hiddenBytesPerToken() { return (double) hidden * bytesPerWeight; }

    public String describe() {
        return String.format(Locale.ROOT, "%s: %d layers, hidden %d, heads %d/%d, ffn %d (%d matrices), vocab %d, %.1f GB of layer weights",
                name, layers, hidden, heads, kvHeads, ffn, mlpMatrices, vocab, layers * layerWeightBytes() / 1e9);
    }
}
