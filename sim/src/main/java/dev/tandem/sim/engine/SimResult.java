package dev.tandem.sim.engine;

import dev.tandem.bench.LatencyStats;
import dev.tandem.sim.config.PoolSpec;
import dev.tandem.sim.config.PowerSpec;
import dev.tandem.sim.config.SimConfig;
import dev.tandem.sim.perf.PhaseTimes;
import dev.tandem.sim.workload.Workload;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * What one run produced: per-request latencies and the summary figures (percentiles, slowdowns against the
 * unloaded reference, Splitwise's SLOs, throughput, utilisation, cost and power).
 *
 * <p>TTFT ends when the prompt phase ends (it makes the first token); TBT is (E2E - TTFT) / (output - 1), as
 * SplitwiseSim computes it, undefined for one-token outputs. Throughput counts the requests completed while requests
 * were still arriving, over that window (so an overloaded cluster shows what it sustains, not the offered rate). Slowdowns divide by the same request run alone on
 * the reference machine (DGX-A100, TP 8, from the profile), as the paper's SLOs do.
 */
public record SimResult(Summary summary, double[] ttftS, double[] tbtS, double[] e2eS, int[] promptTokens, int[] outputTokens,
                        int[] promptInstance, int[] tokenInstance, short[] preemptions, PoolTimeline pools) {

    /** Splitwise's SLO table: P50 / P90 / P99 slowdown limits for TTFT, TBT and E2E. */
    public static final int[] LEVELS = {50, 90, 99};
    public static final String[] METRICS = {"TTFT", "TBT", "E2E"};
    public static final double[][] LIMITS = {{2, 3, 6}, {1.25, 1.5, 5}, {1.25, 1.5, 5}};

    public record Percentiles(double p50, double p90, double p99, double mean) {
        static Percentiles of(double[] sortedFinite) {
            if (sortedFinite.length == 0) return new Percentiles(Double.NaN, Double.NaN, Double.NaN, Double.NaN);
            double s = 0;
            for (double x : sortedFinite) s += x;
            return new Percentiles(LatencyStats.percentile(sortedFinite, 50), LatencyStats.percentile(sortedFinite, 90),
                    LatencyStats.percentile(sortedFinite, 99), s / sortedFinite.length);
        }

        public double at(int level) {
            return level == 50 ? p50 : level == 90 ? p90 : p99;
        }
    }

    /** One SLO: the Pxx slowdown (unfinished requests count as infinitely slow), its limit and the share within it. */
    public record Slo(String metric, int level, double limit, double slowdown, double attainment, boolean met) {}

    public record PoolUse(String name, String role, String hardware, int machines, int instances, double busyFraction,
                          double promptFraction, double tokenFraction, double mixedFraction) {}

    public record Summary(String name, String design, String model, String workload, int requests, int completed, int rejected,
                          int unplaced, double makespanS, double offeredRps, double throughputRps, double outputTokensPerS,
                          Percentiles ttftS, Percentiles tbtS, Percentiles e2eS,
                          Percentiles ttftSlowdown, Percentiles tbtSlowdown, Percentiles e2eSlowdown,
                          List<Slo> slos, boolean slosMet, long preemptions, int machines, int instances,
                          double costPerHour, double powerUnits, double provisionedWatts, double meanWatts, double energyKWh,
                          List<PoolUse> pools, long events, double wallS, double requestsPerWallS) {}

    static SimResult of(SimConfig config, Workload w, Requests rq, Instance[] instances, PoolTimeline timeline, PhaseTimes reference,
                        int rejected, int unplaced, long events, double wallS) {
        int n = rq.size();
        double[] ttft = new double[n], tbt = new double[n], e2e = new double[n];
        double[] sTtft = new double[n], sTbt = new double[n], sE2e = new double[n];
        double tbt0 = reference.tokenSeconds(1), frontEnd = config.router().frontEndS();
        int completed = 0;
        long outTokens = 0, preempt = 0;
        double first = n > 0 ? rq.arrival[0] : 0, last = first, lastArrival = n > 0 ? rq.arrival[n - 1] : 0;
        int inWindow = 0;
        for (int r = 0; r < n; r++) {
            preempt += rq.preemptions[r];
            if (rq.state[r] != Requests.DONE) {
                ttft[r] = tbt[r] = e2e[r] = Double.NaN;
                sTtft[r] = sTbt[r] = sE2e[r] = Double.POSITIVE_INFINITY;
                continue;
            }
            completed++;
            outTokens += rq.output[r];
            last = Math.max(last, rq.finish[r]);
            if (rq.finish[r] <= lastArrival) inWindow++;
            // The front end (HTTP, streaming, the client) delays every token alike: TTFT and E2E, not the gaps.
            ttft[r] = rq.firstToken[r] - rq.arrival[r] + frontEnd;
            e2e[r] = rq.finish[r] - rq.arrival[r] + frontEnd;
            tbt[r] = rq.output[r] > 1 ? (rq.finish[r] - rq.firstToken[r]) / (rq.output[r] - 1) : Double.NaN;
            double ttft0 = reference.promptAloneSeconds(rq.prompt[r]) + frontEnd;
            sTtft[r] = ttft[r] / ttft0;
            sTbt[r] = rq.output[r] > 1 ? tbt[r] / tbt0 : Double.NaN;
            sE2e[r] = e2e[r] / (ttft0 + (rq.output[r] - 1) * tbt0);
        }
        double makespan = last - first;
        double[][] slow = {sortedNoNaN(sTtft), sortedNoNaN(sTbt), sortedNoNaN(sE2e)};
        List<Slo> slos = new ArrayList<>();
        boolean allMet = completed > 0;
        for (int m = 0; m < 3; m++) {
            for (int l = 0; l < 3; l++) {
                double limit = LIMITS[m][l];
                double[] v = slow[m];
                int within = upperBound(v, limit);
                double att = v.length == 0 ? Double.NaN : within / (double) v.length;
                double at = v.length == 0 ? Double.NaN : LatencyStats.percentile(v, LEVELS[l]);
                boolean met = v.length > 0 && att >= LEVELS[l] / 100.0;
                allMet &= met;
                slos.add(new Slo(METRICS[m], LEVELS[l], limit, at, att, met));
            }
        }
        // Utilisation, and energy from busy time by phase (idle for the rest of the makespan).
        PowerSpec pw = config.power();
        List<PoolUse> uses = new ArrayList<>();
        double joules = 0, provisioned = 0;
        for (int p = 0; p < config.pools().size(); p++) {
            PoolSpec ps = config.pools().get(p);
            double bp = 0, bt = 0, bm = 0;
            int count = 0;
            PhaseTimes times = null;
            for (Instance in : instances) {
                if (in.pool != p) continue;
                count++;
                bp += in.busyPrompt;
                bt += in.busyToken;
                bm += in.busyMixed;
                times = in.times;
            }
            double denom = count * Math.max(makespan, 1e-9);
            // Watts per instance in each phase: measured per GPU when the profile has them, else fractions of the TDP.
            double tdp = ps.machine().tdpWatts() / ps.instancesPerMachine();
            double promptW = times != null && times.promptWatts() > 0 ? times.promptWatts() * ps.tensorParallel() : pw.promptFraction() * tdp;
            double tokenW = times != null && times.tokenWatts() > 0 ? times.tokenWatts() * ps.tensorParallel() : pw.tokenFraction() * tdp;
            joules += promptW * (bp + bm) + tokenW * bt + pw.idleFraction() * tdp * Math.max(0, count * makespan - bp - bt - bm);
            provisioned += ps.machines() * ps.machine().tdpWatts();
            uses.add(new PoolUse(ps.name(), ps.role().name().toLowerCase(), ps.machine().hardware(), ps.machines(), count,
                    (bp + bt + bm) / denom, bp / denom, bt / denom, bm / denom));
        }
        Summary s = new Summary(config.name(), config.router().design().flag(), config.model().name(), w.description(), n, completed,
                rejected, unplaced, makespan, n > 1 ? (n - 1) / (lastArrival - first) : Double.NaN, n > 1 ? inWindow / (lastArrival - first) : Double.NaN, outTokens / Math.max(makespan, 1e-9),
                Percentiles.of(sortedNoNaN(ttft)), Percentiles.of(sortedNoNaN(tbt)), Percentiles.of(sortedNoNaN(e2e)),
                Percentiles.of(finitePrefix(slow[0])), Percentiles.of(finitePrefix(slow[1])), Percentiles.of(finitePrefix(slow[2])),
                slos, allMet, preempt, config.machines(), instances.length, config.cost(), config.powerUnits(), provisioned,
                makespan > 0 ? joules / makespan : Double.NaN, joules / 3.6e6, uses, events, wallS, n / Math.max(wallS, 1e-9));
        return new SimResult(s, ttft, tbt, e2e, rq.prompt, rq.output, rq.promptInstance, rq.tokenInstance, rq.preemptions, timeline);
    }

    /** Sorted, NaN left out, +infinity kept (an unfinished request). */
    private static double[] sortedNoNaN(double[] v) {
        double[] a = new double[v.length];
        int n = 0;
        for (double x : v) if (!Double.isNaN(x)) a[n++] = x;
        a = Arrays.copyOf(a, n);
        Arrays.parallelSort(a); // same order as a plain sort; uses the other core for a million requests
        return a;
    }

    /** Sorted finite values: computed from the NaN-free sorted copy by dropping its +infinity tail. */
    private static double[] finitePrefix(double[] sortedNoNaN) {
        int n = sortedNoNaN.length;
        while (n > 0 && sortedNoNaN[n - 1] == Double.POSITIVE_INFINITY) n--;
        return n == sortedNoNaN.length ? sortedNoNaN : Arrays.copyOf(sortedNoNaN, n);
    }

    /** Number of elements of sorted {@code v} that are <= x. */
    private static int upperBound(double[] v, double x) {
        int lo = 0, hi = v.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (v[mid] <= x) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }
}
