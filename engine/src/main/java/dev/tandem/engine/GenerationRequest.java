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
 * @param sampledTokens how many of the prompt's last tokens this request's sampler drew already: a request recomputed
 *                      elsewhere after a failure (prompt plus the tokens sent) continues its seeded random stream after
 *                      their draws instead of starting it again; 0 for a new request
 */
public record GenerationRequest(int[] promptTokens, int maxTokens, SamplingParams sampling, boolean ignoreEos, int topLogprobs,
                                boolean speculative, int sampledTokens) {
    public GenerationRequest(int[] promptTokens, int maxTokens, SamplingParams sampling, boolean ignoreEos, int topLogprobs) {
        this(promptTokens, maxTokens, sampling, ignoreEos, topLogprobs, true);
    }

    public GenerationRequest(int[] promptTokens, int maxTokens, SamplingParams sampling, boolean ignoreEos, int topLogprobs, boolean speculative) {
        this(promptTokens, maxTokens, sampling, ignoreEos, topLogprobs, speculative, 0);
    }

    public GenerationRequest withSpeculative(boolean on) {
        return new GenerationRequest(promptTokens, maxTokens, sampling, ignoreEos, topLogprobs, on, sampledTokens);
    }

    /**
     * The rest of this request once {@code tokens} were generated: those tokens join the prompt (to be recomputed),
     * the budget shrinks by as many, and the sampler will continue after their draws.
     */
    public GenerationRequest continuedAfter(int[] tokens, int count) {
        int[] prompt = java.util.Arrays.copyOf(promptTokens, promptTokens.length + count);
        System.arraycopy(tokens, 0, prompt, promptTokens.length, count);
        return new GenerationRequest(prompt, maxTokens - count, sampling, ignoreEos, topLogprobs, speculative, sampledTokens + count);
    }

    public GenerationRequest {
        if (promptTokens.length == 0) throw new IllegalArgumentException("the prompt has no tokens");
        if (maxTokens < 0) throw new IllegalArgumentException("max_tokens must be >= 0, got " + maxTokens);
        if (topLogprobs > 20) throw new IllegalArgumentException("top_logprobs must be at most 20, got " + topLogprobs);
        if (sampledTokens < 0 || sampledTokens >= promptTokens.length) {
            throw new IllegalArgumentException("sampledTokens must be in [0, " + promptTokens.length + "), got " + sampledTokens);
        }
    }

    public static GenerationRequest greedy(int[] prompt, int maxTokens) {
        return new GenerationRequest(prompt, maxTokens, SamplingParams.GREEDY, false, -1);
    }
}
