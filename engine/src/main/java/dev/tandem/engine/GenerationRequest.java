package dev.tandem.engine;

import dev.tandem.core.sampling.SamplingParams;

/**
 * One request to the engine, already tokenized.
 *
 * @param promptTokens  the prompt, including any BOS the tokenizer adds
 * @param maxTokens     most tokens to generate
 * @param sampling      how to pick tokens (temperature 0 is greedy)
 * @param ignoreEos     keep going past the model's EOS (benchmarks force output lengths this way)
 * @param topLogprobs   -1: no logprobs; 0: the chosen token's logprob; n > 0: also the n most likely
 * @param speculative   may use speculative decoding when the engine has it (off changes speed, never the distribution)
 */
public record GenerationRequest(int[] promptTokens, int maxTokens, SamplingParams sampling, boolean ignoreEos, int topLogprobs,
                                boolean speculative) {
    public GenerationRequest(int[] promptTokens, int maxTokens, SamplingParams sampling, boolean ignoreEos, int topLogprobs) {
        this(promptTokens, maxTokens, sampling, ignoreEos, topLogprobs, true);
    }

    public GenerationRequest withSpeculative(boolean on) {
        return new GenerationRequest(promptTokens, maxTokens, sampling, ignoreEos, topLogprobs, on);
    }

    public GenerationRequest {
        if (promptTokens.length == 0) throw new IllegalArgumentException("the prompt has no tokens");
        if (maxTokens < 0) throw new IllegalArgumentException("max_tokens must be >= 0, got " + maxTokens);
        if (topLogprobs > 20) throw new IllegalArgumentException("top_logprobs must be at most 20, got " + topLogprobs);
    }

    public static GenerationRequest greedy(int[] prompt, int maxTokens) {
        return new GenerationRequest(prompt, maxTokens, SamplingParams.GREEDY, false, -1);
    }
}
