package dev.tandem.engine.spec;

import dev.tandem.core.model.Model;

/**
 * How an engine speculates.
 *
 * @param draftModel            the draft model (sharing the target's tokenizer), or null for n-gram prompt lookup
 * @param numSpeculativeTokens  k: draft tokens per step, or the largest k when adaptive
 * @param adaptive              choose k per sequence from its running acceptance rate
 * @param ngramMin              shortest suffix n-gram prompt lookup matches
 * @param ngramMax              longest suffix n-gram prompt lookup matches
 * @param verifyCostPerToken    target's extra cost per scored draft token, relative to a plain decode pass (adaptive k's cost model)
 */
public record SpeculativeConfig(Model draftModel, int numSpeculativeTokens, boolean adaptive, int ngramMin, int ngramMax,
                                double verifyCostPerToken) {
    public static final int MAX_SPECULATIVE_TOKENS = 16;

    public SpeculativeConfig {
        if (numSpeculativeTokens < 1 || numSpeculativeTokens > MAX_SPECULATIVE_TOKENS) {
            throw new IllegalArgumentException("num-speculative-tokens must be in 1.." + MAX_SPECULATIVE_TOKENS + ", got " + numSpeculativeTokens);
        }
        if (ngramMin < 1 || ngramMax < ngramMin) throw new IllegalArgumentException("n-gram sizes must satisfy 1 <= min <= max, got " + ngramMin + ".." + ngramMax);
        if (!(verifyCostPerToken >= 0)) throw new IllegalArgumentException("verify cost per token must be >= 0, got " + verifyCostPerToken);
    }

    /** Prompt lookup of 2- to 4-token suffixes: a lone recurring token predicts too poorly to be worth scoring. */
    public static SpeculativeConfig ngram(int k) { return new SpeculativeConfig(null, k, false, 2, 4, 0.08); }

    public static SpeculativeConfig draftModel(Model draft, int k) { return new SpeculativeConfig(draft, k, false, 2, 4, 0.08); }

    public SpeculativeConfig withAdaptive(boolean on) {
        return new SpeculativeConfig(draftModel, numSpeculativeTokens, on, ngramMin, ngramMax, verifyCostPerToken);
    }

    /** "k = 4" or "k = adaptive 1..8". */
    public String describe() { return "k = " + (adaptive ? "adaptive 1.." + numSpeculativeTokens : String.valueOf(numSpeculativeTokens)); }
}
