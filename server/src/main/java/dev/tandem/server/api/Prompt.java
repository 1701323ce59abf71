package dev.tandem.server.api;

/** The prompt of a completion request: text to encode, or token ids given as they are. */
public sealed interface Prompt {
    record Text(String text) implements Prompt {}

    record Tokens(int[] ids) implements Prompt {}
}
