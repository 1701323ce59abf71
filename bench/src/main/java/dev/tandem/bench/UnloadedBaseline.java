package dev.tandem.bench;

import java.util.List;

/**
 * Latencies of requests sent one at a time to an otherwise idle server: the yardstick of the SLOs. Each figure
 * is the median over the baseline requests; {@code tbtS} is the median of their mean time between tokens.
 *
 * <p>Time to first token grows with the prompt, so a trace whose prompts range from tens to thousands of tokens
 * (the code trace) cannot be judged by the median prompt's TTFT: {@code ttftCurve} holds the unloaded TTFT at a few
 * prompt lengths (the run's 10th, 50th and 90th percentiles), and {@link #ttftFor} interpolates it, as Splitwise
 * measures each request against itself running alone. Without a curve every prompt gets {@code ttftS}.
 *
 * @param ttftCurve pairs (prompt tokens, unloaded TTFT s) by increasing prompt length; empty for a single size
 */
public record UnloadedBaseline(int requests, int promptTokens, int outputTokens, double ttftS, double tbtS, double e2eS,
                               List<double[]> ttftCurve) {

    public UnloadedBaseline {
        ttftCurve = List.copyOf(ttftCurve);
        for (int k = 1; k < ttftCurve.size(); k++) {
            if (!(ttftCurve.get(k)[0] > ttftCurve.get(k - 1)[0])) throw new IllegalArgumentException("TTFT curve not by increasing prompt length");
        }
    }

    public UnloadedBaseline(int requests, int promptTokens, int outputTokens, double ttftS, double tbtS, double e2eS) {
        this(requests, promptTokens, outputTokens, ttftS, tbtS, e2eS, List.of());
    }

    public static UnloadedBaseline of(List<RequestRecord> records, int promptTokens, int outputTokens) {
        return new UnloadedBaseline(records.size(), promptTokens, outputTokens, median(records, RequestRecord::ttftS),
                median(records, RequestRecord::meanTbtS), median(records, RequestRecord::e2eS));
    }

    private static double median(List<RequestRecord> records, java.util.function.ToDoubleFunction<RequestRecord> metric) {
        return LatencyStats.of(records.stream().mapToDouble(metric).toArray()).p50();
    }

    /**
     * This baseline with TTFT measured at more prompt lengths, each the fastest of its requests: the first request of
     * a length may pay one-time costs (a new GEMM shape's algorithm choice) that are no part of serving it unloaded.
     */
    public UnloadedBaseline withTtftAt(java.util.Map<Integer, List<RequestRecord>> byPromptTokens) {
        java.util.TreeMap<Integer, Double> points = new java.util.TreeMap<>();
        points.put(promptTokens, ttftS);
        byPromptTokens.forEach((p, rs) -> points.put(p, rs.stream().mapToDouble(RequestRecord::ttftS).min().orElseThrow()));
        List<double[]> curve = new java.util.ArrayList<>();
        points.forEach((p, t) -> curve.add(new double[] {p, t}));
        return new UnloadedBaseline(requests, promptTokens, outputTokens, ttftS, tbtS, e2eS, curve.size() > 1 ? curve : List.of());
    }

    /**
     * Unloaded TTFT of a prompt of {@code promptTokens}: linear between the measured lengths, the end segments'
     * slope beyond the longest (prefill time keeps growing), and the shortest's TTFT below it (fixed costs dominate).
     */
    public double ttftFor(int promptTokens) {
        if (ttftCurve.isEmpty()) return ttftS;
        double[] first = ttftCurve.getFirst();
        if (promptTokens <= first[0]) return first[1];
        for (int k = 1; k < ttftCurve.size(); k++) {
            double[] a = ttftCurve.get(k - 1), b = ttftCurve.get(k);
            if (promptTokens <= b[0] || k == ttftCurve.size() - 1) {
                double t = a[1] + (b[1] - a[1]) * (promptTokens - a[0]) / (b[0] - a[0]);
                return Math.max(t, first[1]);
            }
        }
        throw new AssertionError();
    }

    /**
     * What a request with this prompt and this many output tokens would take unloaded: its first token, then one
     * baseline gap per further token. Loaded E2E is compared with this, not with the median request's E2E, so a
     * long answer is not counted as slow merely for being long.
     */
    public double expectedE2eS(int promptTokens, int outputTokens) {
        double tbt = Double.isNaN(tbtS) ? 0 : tbtS;
        return ttftFor(promptTokens) + Math.max(0, outputTokens - 1) * tbt;
    }

    /** {@link #expectedE2eS(int, int)} for a prompt of the baseline's own length. */
    public double expectedE2eS(int outputTokens) { return expectedE2eS(promptTokens, outputTokens); }
}
