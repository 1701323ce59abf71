package dev.tandem.server.generation;

/** Token counts of one request, as OpenAI's usage object reports them. */
public record Usage(int promptTokens, int completionTokens, int cachedTokens) {
    public int totalTokens() { return promptTokens + completionTokens; }
}
