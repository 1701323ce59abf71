package dev.tandem.server.generation;

import java.util.List;

/**
 * A generated token's log-probability for the API: its text piece, raw bytes (a piece can be part of a UTF-8
 * character), where its text starts in the output, and the most likely alternatives at that position.
 */
public record TokenLogprob(String token, byte[] bytes, float logprob, int textOffset, List<Alternative> top) {
    public record Alternative(String token, byte[] bytes, float logprob) {}
}
