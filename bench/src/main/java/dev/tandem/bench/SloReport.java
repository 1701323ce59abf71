package dev.tandem.bench;

import java.util.ArrayList;
import java.util.List;

/**
 * Splitwise-style SLOs, relative to the {@link UnloadedBaseline}, and goodput.
 *
 * <p>Nine SLOs: P50/P90/P99 of TTFT within 2x/3x/6x of unloaded TTFT (of a prompt of the request's length,
 * {@link UnloadedBaseline#ttftFor}); of TBT (every gap between text chunks)
 * within 1.25x/1.5x/5x of unloaded mean TBT; of E2E within 1.25x/1.5x/5x of the request's own unloaded E2E
 * ({@link UnloadedBaseline#expectedE2eS}). Attainment of a Pxx SLO is the share of samples within its limit,
 * failed requests counted as outside it; the SLO is met when that share is at least xx%. The percentile figures
 * themselves are over completed requests only.
 *
 * <p>Goodput rule (one per request, at the P90 limits): a request is <em>good</em> when it completed and its
 * TTFT &le; 3x unloaded TTFT, its mean TBT &le; 1.5x unloaded TBT (not checked for single-token outputs), and its
 * E2E &le; 1.5x its unloaded E2E. Goodput = good requests / run duration (first send to last completion).
 */
public record SloReport(List<Result> results, int requests, int goodRequests, double goodputRps, String goodRule) {

    public static final String GOOD_RULE = "completed, TTFT <= 3x unloaded TTFT (at its prompt length), mean TBT <= 1.5x unloaded TBT (if >= 2 tokens), "
            + "E2E <= 1.5x its unloaded E2E (its unloaded TTFT + (tokens - 1) x unloaded TBT)";

    /** One SLO: limit {@code multiple} x unloaded at percentile {@code level}; ratios are loaded / unloaded. */
    public record Result(String metric, int level, double multiple, double unloadedS, double measuredRatio,
                         double attainment, String status) {}

    private static final int[] LEVELS = {50, 90, 99};
    private static final double[] TTFT = {2, 3, 6}, TBT = {1.25, 1.5, 5}, E2E = {1.25, 1.5, 5};

    public static SloReport evaluate(UnloadedBaseline base, List<RequestRecord> records, double durationS) {
        List<Double> ttft = new ArrayList<>(), tbt = new ArrayList<>(), e2e = new ArrayList<>();
        int good = 0;
        for (RequestRecord r : records) {
            if (!r.ok()) continue;
            ttft.add(r.ttftS() / base.ttftFor(r.promptTokens()));
            for (double g : r.chunkGapsS()) tbt.add(g / base.tbtS());
            e2e.add(r.e2eS() / base.expectedE2eS(r.promptTokens(), r.outputTokens()));
            if (isGood(base, r)) good++;
        }
        int failed = (int) records.stream().filter(r -> !r.ok()).count();
        List<Result> results = new ArrayList<>();
        for (int i = 0; i < 3; i++) results.add(result("TTFT", LEVELS[i], TTFT[i], base.ttftS(), ttft, failed));
        // TBT samples are gaps, not requests; a failed request adds no gap, so only completed streams count.
        for (int i = 0; i < 3; i++) results.add(result("TBT", LEVELS[i], TBT[i], base.tbtS(), tbt, 0));
        for (int i = 0; i < 3; i++) results.add(result("E2E", LEVELS[i], E2E[i], base.e2eS(), e2e, failed));
        return new SloReport(results, records.size(), good, durationS > 0 ? good / durationS : Double.NaN, GOOD_RULE);
    }

    public static boolean isGood(UnloadedBaseline base, RequestRecord r) {
        if (!r.ok()) return false;
        boolean ttftOk = r.ttftS() <= 3 * base.ttftFor(r.promptTokens());
        double tbt = r.meanTbtS();
        boolean tbtOk = Double.isNaN(tbt) || Double.isNaN(base.tbtS()) || tbt <= 1.5 * base.tbtS();
        boolean e2eOk = r.e2eS() <= 1.5 * base.expectedE2eS(r.promptTokens(), r.outputTokens());
        return ttftOk && tbtOk && e2eOk;
    }

    /** @param ratios loaded / unloaded of completed samples; @param missing samples that never completed */
    static Result result(String metric, int level, double multiple, double unloadedS, List<Double> ratios, int missing) {
        double[] sorted = ratios.stream().mapToDouble(Double::doubleValue).filter(x -> !Double.isNaN(x)).sorted().toArray();
        if (Double.isNaN(unloadedS) || sorted.length + missing == 0) {
            return new Result(metric, level, multiple, unloadedS, Double.NaN, Double.NaN, "n/a");
        }
        int within = 0;
        for (double x : sorted) if (x <= multiple) within++;
        double attainment = within / (double) (sorted.length + missing);
        String status = attainment >= level / 100.0 ? "met" : "missed";
        return new Result(metric, level, multiple, unloadedS, LatencyStats.percentile(sorted, level), attainment, status);
    }

    public double goodFraction() {
        return requests == 0 ? Double.NaN : goodRequests / (double) requests;
    }
}
