package dev.tandem.core.format.gguf;

import dev.tandem.core.backend.Rope;
import dev.tandem.core.format.ModelFormatException;
import dev.tandem.core.format.WeightBinder;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.ModelWeights;
import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.Tensor;
import dev.tandem.core.tokenizer.ByteLevelBpeTokenizer;
import dev.tandem.core.tokenizer.SentencePieceTokenizer;
import dev.tandem.core.tokenizer.Tokenizer;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Reads a Llama-family model (llama, mistral, qwen2) and its tokenizer out of a GGUF file's metadata and tensors. */
public final class GgufModelReader {
    private GgufModelReader() {}

    public record Loaded(ModelConfig config, ModelWeights weights, Tokenizer tokenizer) {}

    public static Loaded read(GgufFile g, String fileName) {
        String arch = g.getString("general.architecture");
        if (!List.of("llama", "mistral", "qwen2").contains(arch)) {
            throw new ModelFormatException(fileName + ": general.architecture '" + arch + "' is not supported (supported: llama, mistral, qwen2)");
        }
        int dim = g.getInt(arch + ".embedding_length");
        int heads = g.getInt(arch + ".attention.head_count");
        int kvHeads = g.getInt(arch + ".attention.head_count_kv", heads);
        int headDim = g.getInt(arch + ".attention.key_length", dim / heads);
        int layers = g.getInt(arch + ".block_count");
        int hidden = g.getInt(arch + ".feed_forward_length");
        if (dim <= 0 || heads <= 0 || kvHeads <= 0 || headDim <= 0 || layers <= 0 || hidden <= 0 || heads % kvHeads != 0) {
            throw new ModelFormatException(fileName + ": inconsistent " + arch + ".* sizes: embedding_length " + dim + ", head_count "
                    + heads + ", head_count_kv " + kvHeads + ", key_length " + headDim + ", block_count " + layers + ", feed_forward_length " + hidden);
        }
        double theta = g.getFloat(arch + ".rope.freq_base", 10000f);
        float[] invFreq = Rope.invFreq(headDim, theta);
        if (g.hasTensor("rope_freqs.weight")) {
            Tensor f = g.tensor("rope_freqs.weight");
            if (f.elements() != headDim / 2) {
                throw new ModelFormatException(fileName + ": tensor 'rope_freqs.weight' has " + f.elements() + " values, head_dim " + headDim + " implies " + headDim / 2);
            }
            float[] factors = new float[headDim / 2];
            Codec.decode(f.dtype(), f.data(), 0, factors, 0, factors.length);
            for (int i = 0; i < factors.length; i++) invFreq[i] /= factors[i];
        }
        Tokenizer tokenizer = tokenizer(g, fileName);
        Tensor embd = g.hasTensor("token_embd.weight") ? g.tensor("token_embd.weight") : null;
        int vocab = g.has(arch + ".vocab_size") ? g.getInt(arch + ".vocab_size")
                : embd != null ? embd.rows() : tokenizer.vocabSize();
        boolean tied = !g.hasTensor("output.weight");
        boolean bias = g.hasTensor("blk.0.attn_q.bias");
        // GGUF's llama carries Q/K rows permuted for interleaved pairs; qwen2 keeps rotate-half.
        Rope.Style style = arch.equals("qwen2") ? Rope.Style.HALF : Rope.Style.INTERLEAVED;
        int bos = g.getInt("tokenizer.ggml.bos_token_id", tokenizer.bos());
        int eos = g.getInt("tokenizer.ggml.eos_token_id", tokenizer.eos());
        ModelConfig config = new ModelConfig(arch, dim, hidden, layers, heads, kvHeads, headDim, vocab,
                g.getInt(arch + ".context_length", 2048), g.getFloat(arch + ".attention.layer_norm_rms_epsilon", 1e-5f),
                style, theta, invFreq, tied, bias, g.getInt(arch + ".attention.sliding_window", 0), bos, eos);
        if (tokenizer.vocabSize() != vocab) {
            throw new ModelFormatException(fileName + ": the tokenizer has " + tokenizer.vocabSize() + " tokens but the model's vocabulary is "
                    + vocab + " (" + arch + ".vocab_size / token_embd.weight)");
        }
        Map<String, Tensor> byName = new LinkedHashMap<>();
        Map<String, String> fileOf = new HashMap<>();
        for (Tensor t : g.tensors()) {
            byName.put(t.name(), t);
            fileOf.put(t.name(), fileName);
        }
        ModelWeights weights = new WeightBinder(byName, fileOf, "GGUF metadata").bind(config, WeightBinder.GGUF);
        return new Loaded(config, weights, tokenizer);
    }

    private static Tokenizer tokenizer(GgufFile g, String fileName) {
        String model = g.getString("tokenizer.ggml.model");
        String[] tokens = g.getStringArray("tokenizer.ggml.tokens").toArray(String[]::new);
        int[] types = g.has("tokenizer.ggml.token_type") ? g.getIntArray("tokenizer.ggml.token_type") : null;
        int bos = g.getInt("tokenizer.ggml.bos_token_id", -1);
        int eos = g.getInt("tokenizer.ggml.eos_token_id", -1);
        for (String key : new String[] {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"}) {
            int id = g.getInt(key, -1);
            if (id >= tokens.length) throw new ModelFormatException(fileName + ": " + key + " " + id + " is outside the vocabulary of " + tokens.length);
        }
        return switch (model) {
            case "llama" -> {
                float[] scores = g.has("tokenizer.ggml.scores") ? g.getFloatArray("tokenizer.ggml.scores") : new float[tokens.length];
                if (scores.length != tokens.length) {
                    throw new ModelFormatException(fileName + ": tokenizer.ggml.scores has " + scores.length + " values for " + tokens.length + " tokens");
                }
                yield SentencePieceTokenizer.fromVocabulary(tokens, scores, types, bos, eos, g.getBoolean("tokenizer.ggml.add_bos_token", true));
            }
            case "gpt2" -> {
                String[] merges = g.getStringArray("tokenizer.ggml.merges").toArray(String[]::new);
                yield ByteLevelBpeTokenizer.fromVocabulary(tokens, types, merges, bos, eos,
                        g.getBoolean("tokenizer.ggml.add_bos_token", false), GgufVocab.preRegex(g.getString("tokenizer.ggml.pre", "default")));
            }
            default -> throw new ModelFormatException(fileName + ": tokenizer.ggml.model '" + model + "' is not supported (supported: llama, gpt2)");
        };
    }
}
