package dev.tandem.core.generate;

/** What one generation did and how fast. */
public record GenerationStats(int promptTokens, long prefillNanos, int generatedTokens, long decodeNanos, String stopReason) {
    public double prefillTokensPerSecond() { return promptTokens / Math.max(1e-9, prefillNanos / 1e9); }

    /** Decode speed counts the tokens after the first (which comes out of the prefill). */
    public double decodeTokensPerSecond() { return Math.max(0, generatedTokens - 1) / Math.max(1e-9, decodeNanos / 1e9); }
}
