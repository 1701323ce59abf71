package dev.tandem.bench;

import java.util.List;

/**
 * Latencies of requests sent one at a time to an otherwise idle server: the yardstick of the SLOs. Each figure
 * is the median over the baseline requests; {@code tbtS} is the median of their mean time between tokens.
 */
public record UnloadedBaseline(int requests, int promptTokens, int outputTokens, double ttftS, double tbtS, double e2eS) {

    public static UnloadedBaseline of(List<RequestRecord> records, int promptTokens, int outputTokens) {
        double[] ttft = records.stream().mapToDouble(RequestRecord::ttftS).toArray();
        double[] tbt = records.stream().mapToDouble(RequestRecord::meanTbtS).toArray();
        double[] e2e = records.stream().mapToDouble(RequestRecord::e2eS).toArray();
        return new UnloadedBaseline(records.size(), promptTokens, outputTokens,
                LatencyStats.of(ttft).p50(), LatencyStats.of(tbt).p50(), LatencyStats.of(e2e).p50());
    }

    /**
     * What a request with this many output tokens would take unloaded: first token, then one baseline gap per
     * further token. Loaded E2E is compared with this, not with the median request's E2E, so a long answer is
     * not counted as slow merely for being long.
     */
    public double expectedE2eS(int outputTokens) {
        double tbt = Double.isNaN(tbtS) ? 0 : tbtS;
        return ttftS + Math.max(0, outputTokens - 1) * tbt;
    }
}
