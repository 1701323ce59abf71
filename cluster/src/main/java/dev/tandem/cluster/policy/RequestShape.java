package dev.tandem.cluster.policy;

/** What routing knows of a request before it runs: its prompt length and its output budget. */
public record RequestShape(int promptTokens, int maxNewTokens) {
    public RequestShape {
        if (promptTokens < 1) throw new IllegalArgumentException("promptTokens must be >= 1, got " + promptTokens);
        if (maxNewTokens < 0) throw new IllegalArgumentException("maxNewTokens must be >= 0, got " + maxNewTokens);
    }
}
