package dev.tandem.engine;

import java.util.logging.Logger;

/**
 * Where an engine's time goes, logged every few seconds (system property {@code tandem.stepLog} = seconds; off by
 * default): per kind of step (prefill only, decode only, both), how many steps ran, their mean and longest wall
 * time, their mean prompt and decode tokens, and how much of the mean went to the forward call on the host (the rest:
 * the batch's metadata, sampling, and on a GPU the wait for the device). What a serving benchmark needs to tell a
 * worker's slow steps from time it spent waiting, beside what the profile of single steps predicts. Used by the
 * engine thread only.
 */
final class StepLog {
    private static final Logger LOG = Logger.getLogger(StepLog.class.getName());
    private static final String[] KINDS = {"prefill", "decode", "mixed"};

    private final String engine;
    private final long intervalNanos;
    private final long[] steps = new long[3], nanos = new long[3], maxNanos = new long[3], prompt = new long[3], decode = new long[3],
            forwardNanos = new long[3];
    private long since = System.nanoTime();

    StepLog(String engine, long intervalNanos) {
        this.engine = engine;
        this.intervalNanos = intervalNanos;
    }

    /** The log the system property asks for, or null. */
    static StepLog fromProperty(String engine) {
        String v = System.getProperty("tandem.stepLog");
        if (v == null || v.isBlank()) return null;
        double seconds;
        try {
            seconds = Double.parseDouble(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("tandem.stepLog must be a number of seconds, got '" + v + "'");
        }
        return seconds > 0 ? new StepLog(engine, (long) (seconds * 1e9)) : null;
    }

    /** One step: its prompt tokens (prefill chunks), its decoding sequences, its wall time, its forward call's host time. */
    void step(long promptTokens, int decodes, long stepNanos, long forwardCallNanos) {
        int k = promptTokens == 0 ? 1 : decodes == 0 ? 0 : 2;
        steps[k]++;
        nanos[k] += stepNanos;
        maxNanos[k] = Math.max(maxNanos[k], stepNanos);
        forwardNanos[k] += forwardCallNanos;
        prompt[k] += promptTokens;
        decode[k] += decodes;
        long now = System.nanoTime();
        if (now - since >= intervalNanos) flush(now);
    }

    String line(long now) {
        StringBuilder sb = new StringBuilder(engine).append(String.format(java.util.Locale.ROOT, " over %.1f s:", (now - since) / 1e9));
        for (int k = 0; k < 3; k++) {
            if (steps[k] == 0) continue;
            sb.append(String.format(java.util.Locale.ROOT, " %s %d steps, mean %.2f ms (max %.2f), %.0f prompt + %.1f decode tokens, forward call %.2f ms;",
                    KINDS[k], steps[k], nanos[k] / 1e6 / steps[k], maxNanos[k] / 1e6, prompt[k] / (double) steps[k], decode[k] / (double) steps[k],
                    forwardNanos[k] / 1e6 / steps[k]));
        }
        return sb.toString();
    }

    private void flush(long now) {
        LOG.info(line(now));
        java.util.Arrays.fill(steps, 0);
        java.util.Arrays.fill(nanos, 0);
        java.util.Arrays.fill(maxNanos, 0);
        java.util.Arrays.fill(prompt, 0);
        java.util.Arrays.fill(decode, 0);
        java.util.Arrays.fill(forwardNanos, 0);
        since = now;
    }
}
