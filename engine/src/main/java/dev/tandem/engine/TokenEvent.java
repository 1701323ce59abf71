package dev.tandem.engine;

/**
 * One generated token. {@code logprob} is the chosen token's log-probability (NaN when not asked for);
 * {@code topIds} / {@code topLogprobs} hold the most likely alternatives when asked for (else empty).
 */
public record TokenEvent(int token, float logprob, int[] topIds, float[] topLogprobs) {
    static final int[] NO_IDS = new int[0];
    static final float[] NO_LOGPROBS = new float[0];
}
