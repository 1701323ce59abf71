package dev.tandem.bench;

/**
 * What one streamed completion did, in raw {@link System#nanoTime()} stamps.
 *
 * @param status            HTTP status, or 0 when no response arrived
 * @param error             null when the stream completed; else what went wrong
 * @param chunkNanos        arrival time of each chunk that carried text
 * @param completionTokens  usage.completion_tokens of the final chunk, or -1 when the server sent no usage
 * @param promptTokens      usage.prompt_tokens, or -1
 */
public record Completion(int status, String error, long sendNanos, long endNanos, long[] chunkNanos,
                         int completionTokens, int promptTokens, String finishReason) {

    public boolean ok() {
        return error == null;
    }

    /** Tokens generated: the server's own count when it sent usage, else one per text chunk. */
    public int tokens() {
        return completionTokens >= 0 ? completionTokens : chunkNanos.length;
    }
}
