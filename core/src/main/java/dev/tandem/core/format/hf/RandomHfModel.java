package dev.tandem.core.format.hf;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tandem.core.backend.Rope;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.RandomWeights;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tokenizer.SyntheticTokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A seeded random-weight model as a Hugging Face folder (config.json, generation_config.json, a synthetic byte-level
 * tokenizer, safetensors) that Tandem and transformers both load: `tandem init-random`'s output, and the models of
 * tests that compare against transformers (the same seed gives the same bytes, on any machine and thread count).
 */
public final class RandomHfModel {
    private RandomHfModel() {}

    /**
     * Writes the folder for {@code c} (LlamaForCausalLM without biases, or OPTForCausalLM); {@code ropeScaling} (may be
     * null) is written back into a Llama config.json; matrices, embeddings and biases are normal(0, {@code std}).
     */
    public static HfModelWriter.Written write(Path dir, ModelConfig c, DType type, JsonNode ropeScaling, long seed, float std, int threads)
            throws IOException {
        if (!c.isOpt() && (!c.architecture().equals("llama") || c.qkvBias())) {
            throw new IllegalArgumentException("the Hugging Face layout is written as LlamaForCausalLM without biases or as OPTForCausalLM; the configuration is "
                    + c.architecture() + (c.qkvBias() ? " with attention_bias" : ""));
        }
        if (c.vocabSize() < SyntheticTokenizer.MIN_VOCAB) {
            throw new IllegalArgumentException("the synthetic byte-level tokenizer needs vocab_size >= " + SyntheticTokenizer.MIN_VOCAB + ", got " + c.vocabSize());
        }
        // BOS / EOS where the configuration says, else after the ordinary vocabulary as Llama 3 has them. OPT's own
        // configs say BOS = EOS = 2 ("</s>" starts every prompt); the synthetic tokenizer needs them distinct, so random
        // OPT models take "<s>" = 0 as BOS, which the model does not care about.
        boolean valid = c.bos() >= 0 && c.eos() >= 0 && c.bos() < c.vocabSize() && c.eos() < c.vocabSize() && c.bos() != c.eos();
        int bos = valid ? c.bos() : c.isOpt() ? 0 : c.vocabSize() - 2, eos = valid ? c.eos() : c.isOpt() ? 2 : c.vocabSize() - 1;
        ModelConfig hf = c.isOpt() ? ModelConfig.opt(c.dim(), c.hiddenDim(), c.layers(), c.heads(), c.vocabSize(), c.contextLength(), c.normEps(), bos, eos)
                : new ModelConfig(c.architecture(), c.dim(), c.hiddenDim(), c.layers(), c.heads(), c.kvHeads(), c.headDim(),
                c.vocabSize(), c.contextLength(), c.normEps(), Rope.Style.HALF, c.ropeTheta(), c.ropeInvFreq(), c.tiedEmbeddings(),
                false, 0, bos, eos);
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"),
                (c.isOpt() ? HfModelWriter.optConfigJson(hf, type) : HfModelWriter.configJson(hf, type, ropeScaling)).toPrettyString());
        Files.writeString(dir.resolve("generation_config.json"),
                "{\n  \"bos_token_id\": " + bos + ",\n  \"eos_token_id\": " + eos + "\n}\n");
        SyntheticTokenizer.write(dir, c.vocabSize(), bos, eos, c.contextLength());
        return HfModelWriter.write(dir, hf, type, (name, first, count, cols, dst) -> RandomWeights.rows(seed, name, first, count, cols, dst, std),
                HfModelWriter.HF_SHARD_BYTES, threads);
    }
}
