package dev.tandem.engine;

/**
 * Receives a request's tokens. Called on the engine loop thread, in order, at most once per token, then exactly
 * once either {@link #onFinish} or {@link #onError}: implementations must return quickly and never block
 * (hand the work to another thread or a queue), or every request waits.
 */
public interface TokenListener {
    void onToken(TokenEvent token);

    /** promptTokens / generatedTokens count what the engine processed and produced for this request. */
    void onFinish(FinishReason reason, int promptTokens, int generatedTokens, int cachedPromptTokens);

    default void onError(Throwable error) { onFinish(FinishReason.ABORTED, 0, 0, 0); }

    /**
     * The request's prompt entered a step for the first time (its prefill starts now); at most once, before its first
     * token. Splits the time to first token into waiting and prefill (vLLM's request_queue_time / request_prefill_time).
     */
    default void onScheduled() {}
}
