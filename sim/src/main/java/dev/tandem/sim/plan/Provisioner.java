package dev.tandem.sim.plan;

import dev.tandem.sim.Simulation;
import dev.tandem.sim.config.Design;
import dev.tandem.sim.config.ModelSpec;
import dev.tandem.sim.config.SimConfig;
import dev.tandem.sim.config.WorkloadSpec;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * Searches pool sizes for the paper's iso-power, iso-cost and iso-throughput studies. Every evaluation is a
 * simulation of Poisson arrivals (sizes from the trace, one seed for all: common random numbers, so designs
 * are compared on the same requests). What makes it cheaper than a grid:
 * <ul>
 *   <li>SLO attainment falls with the arrival rate, so the highest rate meeting the SLOs is found by
 *       doubling then bisection (to {@link #RATE_PRECISION});</li>
 *   <li>at a fixed rate, meeting the SLOs is monotone in each pool's size, so the smallest token pool for a
 *       prompt pool is a binary search, started from the previous prompt pool's answer;</li>
 *   <li>within a budget, throughput against the prompt pool's share rises then falls (one pool or the other
 *       is the bottleneck), so the split is found by a ternary search, then checked on its neighbours.</li>
 * </ul>
 */
public final class Provisioner {
    static final double RATE_PRECISION = 0.02;
    private final ModelSpec model;
    private final Path perfModel;
    private final String trace;
    private final double durationS;
    private final long seed;
    private final Map<String, Boolean> meets = new HashMap<>();
    private final Map<String, Double> rates = new HashMap<>();
    private int simulations;

    public Provisioner(ModelSpec model, Path perfModel, String trace, double durationS, long seed) {
        this.model = model;
        this.perfModel = perfModel;
        this.trace = trace;
        this.durationS = durationS;
        this.seed = seed;
    }

    public int simulations() { return simulations; }

    /** Whether the cluster meets every SLO at {@code rate} requests/s. */
    public boolean meets(Design d, int np, int nt, double rate) {
        return meets.computeIfAbsent(d.flag() + "/" + np + "/" + nt + "/" + rate, k -> {
            simulations++;
            SimConfig c = d.config(model, perfModel, np, nt, new WorkloadSpec(trace, rate, durationS, 0, seed));
            return Simulation.run(c).summary().slosMet();
        });
    }

    /** Highest rate meeting the SLOs (0 if even a trickle misses them). */
    public double maxRate(Design d, int np, int nt) {
        String key = d.flag() + "/" + np + "/" + nt;
        Double known = rates.get(key);
        if (known != null) return known;
        double lo = 0, hi = Math.max(0.25, 0.5 * (np + nt));
        while (meets(d, np, nt, hi)) {
            lo = hi;
            hi *= 2;
        }
        if (lo == 0) { // find any passing rate by halving
            double r = hi / 2;
            while (r > 0.01 && !meets(d, np, nt, r)) r /= 2;
            if (r <= 0.01) {
                rates.put(key, 0.0);
                return 0;
            }
            lo = r;
            hi = 2 * r;
        }
        while ((hi - lo) / lo > RATE_PRECISION) {
            double mid = round((lo + hi) / 2);
            if (meets(d, np, nt, mid)) lo = mid;
            else hi = mid;
        }
        rates.put(key, lo);
        return lo;
    }

    /** Rates on a fixed grid of 4 significant digits, so cached evaluations are reused across searches. */
    private static double round(double r) {
        double scale = Math.pow(10, Math.floor(Math.log10(r)) - 3);
        return Math.round(r / scale) * scale;
    }

    /** Most throughput within a budget (power units or cost units per hour). */
    public Candidate maxThroughput(Design d, double budget, boolean powerBudget) {
        double pUnit = powerBudget ? d.promptMachine().power() : d.promptMachine().cost();
        double tUnit = powerBudget ? d.tokenMachine().power() : d.tokenMachine().cost();
        if (!d.split()) {
            int n = (int) Math.floor(budget / pUnit + 1e-9);
            return n < 1 ? new Candidate(d, 0, 0, 0) : new Candidate(d, n, 0, maxRate(d, n, 0));
        }
        int maxPrompt = (int) Math.floor((budget - tUnit) / pUnit + 1e-9);
        if (maxPrompt < 1) return new Candidate(d, 0, 0, 0);
        java.util.function.IntToDoubleFunction f = np -> maxRate(d, np, tokensFor(budget, np, pUnit, tUnit));
        int lo = 1, hi = maxPrompt;
        while (hi - lo > 2) { // ternary search on a unimodal function of the prompt pool size
            int m1 = lo + (hi - lo) / 3, m2 = hi - (hi - lo) / 3;
            if (f.applyAsDouble(m1) < f.applyAsDouble(m2)) lo = m1 + 1;
            else hi = m2;
        }
        int best = lo;
        for (int np = Math.max(1, lo - 1); np <= Math.min(maxPrompt, hi + 1); np++) {
            if (f.applyAsDouble(np) > f.applyAsDouble(best)) best = np;
        }
        return new Candidate(d, best, tokensFor(budget, best, pUnit, tUnit), f.applyAsDouble(best));
    }

    private static int tokensFor(double budget, int np, double pUnit, double tUnit) {
        return (int) Math.floor((budget - np * pUnit) / tUnit + 1e-9);
    }

    /** Cheapest (by cost or by power) cluster that meets the SLOs at {@code rate}; null if none up to {@code maxMachines}. */
    public Candidate minimise(Design d, double rate, boolean byPower, int maxMachines) {
        if (!d.split()) {
            int n = smallest(k -> meets(d, k, 0, rate), maxMachines);
            return n < 0 ? null : new Candidate(d, n, 0, rate);
        }
        double pUnit = byPower ? d.promptMachine().power() : d.promptMachine().cost();
        double tUnit = byPower ? d.tokenMachine().power() : d.tokenMachine().cost();
        Candidate best = null;
        int prevTokens = maxMachines;
        // Fewest prompt machines that can work at all (token pool unbounded): monotone, so a binary search.
        int first = smallest(k -> meets(d, k, maxMachines, rate), maxMachines);
        if (first < 0) return null;
        for (int np = first; np < maxMachines; np++) {
            if (best != null && np * pUnit + tUnit >= (byPower ? best.power() : best.cost())) break; // cannot beat it any more
            int fixedNp = np, room = maxMachines - np;
            if (room < 1) break;
            // The last prompt pool's answer is the likely bound; when it is not enough, search upwards from it.
            int cap = Math.min(prevTokens, room);
            int nt;
            if (meets(d, np, cap, rate)) {
                nt = smallestBelow(k -> meets(d, fixedNp, k, rate), cap);
            } else {
                int lo = cap, hi = cap;
                while (hi < room && !meets(d, np, hi, rate)) {
                    lo = hi;
                    hi = Math.min(room, hi * 2);
                }
                if (!meets(d, np, hi, rate)) continue;
                int from = lo;
                nt = from + smallestBelow(k -> meets(d, fixedNp, from + k, rate), hi - from);
            }
            prevTokens = nt;
            Candidate c = new Candidate(d, np, nt, rate);
            if (best == null || (byPower ? c.power() < best.power() : c.cost() < best.cost())) best = c;
        }
        return best;
    }

    /** Smallest k in [1, max] with test true (monotone), by doubling then bisection; -1 if none. */
    private static int smallest(java.util.function.IntPredicate test, int max) {
        int hi = 1;
        while (hi < max && !test.test(hi)) hi = Math.min(max, hi * 2);
        if (!test.test(hi)) return -1;
        int lo = hi / 2; // test(lo) false (or lo == 0)
        while (hi - lo > 1) {
            int mid = (lo + hi) >>> 1;
            if (test.test(mid)) hi = mid;
            else lo = mid;
        }
        return hi;
    }

    /** Smallest k in [1, max] with test true, knowing test(max) is true. */
    private static int smallestBelow(java.util.function.IntPredicate test, int max) {
        int lo = 0, hi = max;
        while (hi - lo > 1) {
            int mid = (lo + hi) >>> 1;
            if (test.test(mid)) hi = mid;
            else lo = mid;
        }
        return hi;
    }
}
