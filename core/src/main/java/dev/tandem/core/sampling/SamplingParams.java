package dev.tandem.core.sampling;

/**
 * How the next token is chosen. temperature 0 is greedy. topK 0, topP 1 and minP 0 switch those filters off;
 * repeatPenalty 1 and the presence / frequency penalties 0 switch the penalties off.
 */
public record SamplingParams(float temperature, int topK, float topP, float minP, float repeatPenalty, int repeatLastN,
                             float presencePenalty, float frequencyPenalty, long seed) {

    public static final SamplingParams GREEDY = new SamplingParams(0f, 0, 1f, 0f, 1f, 64, 0f, 0f, 0L);

    public SamplingParams {
        if (!(temperature >= 0) || Float.isInfinite(temperature)) throw new IllegalArgumentException("temperature must be >= 0, got " + temperature);
        if (topK < 0) throw new IllegalArgumentException("top-k must be >= 0, got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
        if (!(minP >= 0 && minP <= 1)) throw new IllegalArgumentException("min-p must be in [0, 1], got " + minP);
        if (!(repeatPenalty > 0)) throw new IllegalArgumentException("repeat penalty must be > 0, got " + repeatPenalty);
        if (repeatLastN < 0) throw new IllegalArgumentException("repeat-last-n must be >= 0, got " + repeatLastN);
    }

    public boolean greedy() { return temperature == 0f; }

    /** Greedy with no penalty: the token is the logits' argmax, which a backend can take where the logits live. */
    public boolean argmaxOnly() {
        return greedy() && !penalized();
    }

    /** Whether any penalty (repeat, presence, frequency) changes the logits: those need the history, on the host. */
    public boolean penalized() {
        return (repeatPenalty != 1f && repeatLastN > 0) || presencePenalty != 0f || frequencyPenalty != 0f;
    }
}
