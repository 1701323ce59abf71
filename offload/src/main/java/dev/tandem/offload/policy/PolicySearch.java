package dev.tandem.offload.policy;

import org.ojalgo.optimisation.Expression;
import org.ojalgo.optimisation.ExpressionsBasedModel;
import org.ojalgo.optimisation.Optimisation;
import org.ojalgo.optimisation.Variable;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.IntFunction;
import java.util.function.IntToDoubleFunction;

import static dev.tandem.offload.policy.Placement.CC;
import static dev.tandem.offload.policy.Placement.CG;
import static dev.tandem.offload.policy.Placement.HC;
import static dev.tandem.offload.policy.Placement.HG;
import static dev.tandem.offload.policy.Placement.WC;
import static dev.tandem.offload.policy.Placement.WG;

/**
 * FlexGen's policy search: for each GPU batch size, number of GPU batches and setting of the booleans (compression,
 * attention on the CPU), a linear program (ojAlgo) chooses the placement fractions that minimise the cost model's
 * time for the block subject to each tier's peak memory staying within {@code headroom} of its capacity (FlexGen's
 * alpha, 0.8); the best throughput over all of them wins.
 *
 * <p>Where FlexGen scans every number of GPU batches from 1 up to the largest that fits, this search prunes:
 * <ul>
 * <li>GPU batch sizes run up a ladder (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, ...: powers of two and three times
 *     powers of two, denser than FlexGen's 1-4 then doubling) and stop at the first size for which not even one GPU batch
 *     fits: every peak grows with the GPU batch size, so no larger one fits either.</li>
 * <li>The largest number of GPU batches that fits is found by doubling and bisection (feasibility is monotone: the
 *     peaks grow with the block), O(log) LPs, as FlexGen does.</li>
 * <li>Below that bound, throughput is evaluated on a geometric grid of block counts (ratio about 1.25) and refined by
 *     golden-section search in the bracket around the grid's best, O(log) LPs instead of one per count.</li>
 * </ul>
 */
public final class PolicySearch {

    /**
     * @param compression  also try 4-bit weights and / or KV cache (off: uncompressed only)
     * @param headroom     fraction of each tier's capacity the peaks may use (FlexGen: 0.8)
     * @param gpuBatchSize fix the GPU batch size (0: search)
     * @param numGpuBatches fix the number of GPU batches (0: search)
     * @param attention    where decode attention over the offloaded cache may run: CPU (FlexGen's cost model only has
     *                     this), GPU (the cache streamed in), or AUTO (both tried, as the paper's search does)
     * @param maxSequences the job's sequence count, which caps the block (0: no cap); a block larger than the job
     *                     would only be padding
     */
    public record Options(boolean compression, double headroom, int gpuBatchSize, int numGpuBatches, Attention attention,
                          int maxSequences) {
        public Options {
            if (!(headroom > 0) || headroom > 2) throw new IllegalArgumentException("memory headroom must be in (0, 2], got " + headroom);
            if (gpuBatchSize < 0 || numGpuBatches < 0 || maxSequences < 0) {
                throw new IllegalArgumentException("GPU batch size, number of GPU batches and sequence count must be >= 0");
            }
        }

        public static Options defaults(boolean compression) { return new Options(compression, 0.8, 0, 0, Attention.AUTO, 0); }

        public Options withAttention(Attention a) { return new Options(compression, headroom, gpuBatchSize, numGpuBatches, a, maxSequences); }

        public Options withMaxSequences(int n) { return new Options(compression, headroom, gpuBatchSize, numGpuBatches, attention, n); }
    }

    /** Where decode attention over a CPU- or disk-resident cache runs. */
    public enum Attention {
        CPU, GPU, AUTO;

        public static Attention parse(String s) {
            try {
                return valueOf(s.toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("attention '" + s + "': expected cpu, gpu or auto");
            }
        }
    }

    /** The best policy with its estimate, and how much searching it took. */
    public record Result(Estimate best, int linearPrograms, int shapes, long millis) {
        public OffloadPolicy policy() { return best.policy(); }

        public String summary() {
            return String.format(Locale.ROOT, "searched %d batch shapes with %d linear programs in %d ms", shapes, linearPrograms, millis);
        }
    }

    static {
        // ojAlgo prints a paragraph about its hardware profiles on first use unless told not to.
        if (System.getProperty("shut.up.ojAlgo") == null) System.setProperty("shut.up.ojAlgo", "true");
    }

    /** How much better a later setting of the booleans must be to replace an earlier one. */
    static final double SETTING_MARGIN = 0.02;

    private final CostModel model;
    private final Options options;
    private int lps;

    public PolicySearch(CostModel model, Options options) {
        this.model = model;
        this.options = options;
    }

    /** Finds the best policy; throws IllegalArgumentException naming the binding tier when none fits. */
    public Result search() {
        long t0 = System.nanoTime();
        lps = 0;
        int shapes = 0;
        Estimate best = null;
        List<boolean[]> flags = new ArrayList<>();
        boolean[] where = switch (options.attention) {
            case CPU -> new boolean[]{true};
            case GPU -> new boolean[]{false};
            case AUTO -> new boolean[]{true, false};
        };
        for (boolean cpuAttention : where) {
            for (boolean cw : options.compression ? new boolean[]{false, true} : new boolean[]{false}) {
                for (boolean cc : options.compression ? new boolean[]{false, true} : new boolean[]{false}) {
                    flags.add(new boolean[]{cw, cc, cpuAttention});
                }
            }
        }
        for (boolean[] f : flags) {
            Estimate bestHere = null;
            for (int gbs : gpuBatchSizes()) {
                // One LP per block count at most: the bound search and the scan share their answers.
                Map<Integer, Optional<Estimate>> memo = new HashMap<>();  // Optional: infeasible answers are kept too
                IntFunction<Estimate> at = nb -> memo.computeIfAbsent(nb, k -> Optional.ofNullable(solve(shape(gbs, k, f)))).orElse(null);
                Estimate e;
                if (options.numGpuBatches > 0) {
                    e = at.apply(options.numGpuBatches);
                    if (e == null) break;  // larger GPU batches need more of every tier
                } else {
                    int ub = maxBatches(at, options.maxSequences > 0 ? Math.max(1, options.maxSequences / gbs) : 1 << 20);
                    if (ub == 0) break;
                    e = bestBatchCount(at, ub);
                }
                shapes++;
                if (e != null && (bestHere == null || e.tokensPerSecond() > bestHere.tokensPerSecond())) bestHere = e;
            }
            // Across settings the earlier one (uncompressed, CPU attention: FlexGen's defaults) keeps its place unless a
            // later one is better by more than the model can tell apart: compression costs accuracy, and streaming the
            // cache to the GPU is a term FlexGen never fitted.
            if (bestHere != null && (best == null || bestHere.tokensPerSecond() > best.tokensPerSecond() * (1 + SETTING_MARGIN))) best = bestHere;
        }
        if (best == null) throw new IllegalArgumentException(noFit());
        return new Result(best, lps, shapes, (System.nanoTime() - t0) / 1_000_000);
    }

    private List<Integer> gpuBatchSizes() {
        if (options.gpuBatchSize > 0) return List.of(options.gpuBatchSize);
        int cap = options.maxSequences > 0 ? options.maxSequences : 1 << 16;
        List<Integer> r = new ArrayList<>();
        for (int g : new int[]{1, 2, 3}) if (g <= cap) r.add(g);
        for (int p = 4; p <= cap; p *= 2) {
            r.add(p);
            if (p * 3 / 2 <= cap) r.add(p * 3 / 2);
        }
        return r;
    }

    private static CostModel.Shape shape(int gbs, int nb, boolean[] f) {
        return new CostModel.Shape(gbs, nb, f[0], f[1], f[2]);
    }

    /** The largest number of GPU batches up to {@code cap} that fits (0: none), by doubling then bisection. */
    private static int maxBatches(IntFunction<Estimate> at, int cap) {
        if (at.apply(1) == null) return 0;
        int lo = 1, hi = 2;
        while (hi <= cap && at.apply(hi) != null) {
            lo = hi;
            hi *= 2;
        }
        if (hi > cap) {
            if (at.apply(cap) != null) return cap;
            hi = cap;
        }
        while (hi - lo > 1) {  // lo fits, hi does not
            int mid = (lo + hi) >>> 1;
            if (at.apply(mid) != null) lo = mid;
            else hi = mid;
        }
        return lo;
    }

    /** The best block count in [1, ub]: a geometric grid, then golden-section search around the grid's best. */
    private static Estimate bestBatchCount(IntFunction<Estimate> at, int ub) {
        IntToDoubleFunction eval = nb -> {
            Estimate e = at.apply(nb);
            return e == null ? 0 : e.tokensPerSecond();
        };
        List<Integer> grid = new ArrayList<>();
        for (int nb = 1; nb < ub; nb = Math.max(nb + 1, (int) (nb * 1.25))) grid.add(nb);
        grid.add(ub);
        int bi = 0;
        for (int i = 0; i < grid.size(); i++) if (eval.applyAsDouble(grid.get(i)) > eval.applyAsDouble(grid.get(bi))) bi = i;
        int lo = grid.get(Math.max(0, bi - 1)), hi = grid.get(Math.min(grid.size() - 1, bi + 1));
        while (hi - lo > 2) {  // golden section on integers
            int a = lo + (int) Math.round((hi - lo) * 0.382), b = lo + (int) Math.round((hi - lo) * 0.618);
            if (a == b) b = a + 1;
            if (eval.applyAsDouble(a) >= eval.applyAsDouble(b)) hi = b;
            else lo = a;
        }
        Estimate best = null;
        for (int nb = lo; nb <= hi; nb++) {
            Estimate e = at.apply(nb);
            if (e != null && (best == null || e.tokensPerSecond() > best.tokensPerSecond())) best = e;
        }
        for (int nb : grid) {
            Estimate e = at.apply(nb);
            if (e != null && e.tokensPerSecond() > best.tokensPerSecond()) best = e;
        }
        return best;
    }

    /**
     * The LP for one batch shape: minimise l T_pre + l (n - 1) T_gen over (wg, wc, cg, cc, hg, hc) with T_pre and T_gen
     * bounded below by each overlapped group of terms (the schedule's {@code Phase.bounds}), each tier's peaks within headroom x capacity (rows scaled by the
     * capacity so the LP sees numbers near 1), wg + wc <= 1, cg + cc <= 1, and hg + hc = 1 (activations never on disk,
     * as in FlexGen's model and runtime). Returns the estimate at the optimum, or null when infeasible.
     */
    Estimate solve(CostModel.Shape shape) {
        lps++;
        CostModel.Terms t = model.terms(shape);
        ExpressionsBasedModel lp = new ExpressionsBasedModel();
        Variable[] x = new Variable[Placement.N];
        for (int i = 0; i < x.length; i++) x[i] = lp.addVariable(Placement.NAMES[i]).lower(0).upper(1);
        int l = model.model().layers(), n = model.genLen();
        Variable tpre = lp.addVariable("Tpre").lower(0).weight(l);
        Variable tgen = lp.addVariable("Tgen").lower(0).weight((double) l * (n - 1));

        sum(lp, "w", x, WG, WC).upper(1);
        Expression cache = sum(lp, "c", x, CG, CC).upper(1);
        // Tandem's executor keeps the KV cache on the GPU or the CPU, never on disk (its schedule has no term for it).
        if (model.hardware().schedule() == HardwareProfile.Schedule.TANDEM) cache.level(1);
        sum(lp, "h", x, HG, HC).level(1);

        for (Placement bound : t.prefill().bounds()) atLeast(lp, "pre", tpre, x, bound);
        for (Placement bound : t.decode().bounds()) atLeast(lp, "gen", tgen, x, bound);

        HardwareProfile hw = model.hardware();
        double h = options.headroom;
        within(lp, "gpu_p", x, t.gpuPrefill(), h * hw.gpuMemory());
        within(lp, "gpu_g", x, t.gpuDecode(), h * hw.gpuMemory());
        within(lp, "cpu_p", x, t.cpuPrefill(), h * hw.cpuMemory());
        within(lp, "cpu_g", x, t.cpuDecode(), h * hw.cpuMemory());
        within(lp, "disk", x, t.disk(), h * hw.diskMemory());

        Optimisation.Result r = lp.minimise();
        if (!r.getState().isFeasible()) return null;
        // (Should no rounding of the optimum fit, the shape counts as infeasible: a hair from the boundary anyway.)
        double[] v = new double[Placement.N];
        for (int i = 0; i < v.length; i++) v[i] = Math.min(1, Math.max(0, x[i].getValue().doubleValue()));
        return rounded(t, v);
    }

    private static Expression sum(ExpressionsBasedModel lp, String name, Variable[] x, int a, int b) {
        Expression e = lp.addExpression(name);
        e.set(x[a], 1);
        e.set(x[b], 1);
        return e;
    }

    /** time - term(x) >= term's constant. */
    private static void atLeast(ExpressionsBasedModel lp, String name, Variable time, Variable[] x, Placement term) {
        Expression e = lp.addExpression(name + lp.getExpressions().size()).lower(term.constant);
        e.set(time, 1);
        for (int i = 0; i < x.length; i++) if (term.coefficient(i) != 0) e.set(x[i], -term.coefficient(i));
    }

    /** peak(x) / capacity <= 1. */
    private static void within(ExpressionsBasedModel lp, String name, Variable[] x, Placement peak, double capacity) {
        Expression e = lp.addExpression(name).upper(1 - peak.constant / capacity);
        for (int i = 0; i < x.length; i++) if (peak.coefficient(i) != 0) e.set(x[i], peak.coefficient(i) / capacity);
    }

    /**
     * The LP's fractions as percentages with one decimal, the policy's resolution. The optimum sits where memory binds,
     * and the time is steep there (a 0.1 % share of KV on disk costs several ms per layer), so rather than rounding
     * blindly each GPU / CPU share is rounded down or up, and the best of the 16 combinations that fits is kept.
     */
    private Estimate rounded(CostModel.Terms t, double[] v) {
        Estimate best = null;
        for (int mask = 0; mask < 16; mask++) {
            double[] p = new double[Placement.N];
            int bit = 0;
            for (int i : new int[]{WG, WC, CG, CC}) {
                double pct = v[i] * 1000 + 1e-6;
                p[i] = ((mask >> bit++ & 1) == 0 ? Math.floor(pct) : Math.ceil(pct - 2e-6)) / 10.0;
            }
            if (p[WG] + p[WC] > 100 || p[CG] + p[CC] > 100) continue;
            if (model.hardware().schedule() == HardwareProfile.Schedule.TANDEM) p[CC] = Math.round(1000 - 10 * p[CG]) / 10.0;
            p[HG] = Math.round(v[HG] * 1000) / 10.0;
            p[HC] = 100 - p[HG];
            CostModel.Shape s = t.shape();
            // With the whole cache on the GPU, "attention on the CPU" means nothing (both forms give the same terms).
            OffloadPolicy policy = new OffloadPolicy(s.gpuBatchSize(), s.numGpuBatches(), p[WG], p[WC], p[CG], p[CC], p[HG], p[HC],
                    s.compressWeight(), s.compressCache(), s.cpuCacheCompute() && p[CG] < 100);
            Estimate e = model.estimate(t, CostModel.fractions(policy), policy);
            if (e.fits(options.headroom) && (best == null || e.tokensPerSecond() > best.tokensPerSecond())) best = e;
        }
        return best;
    }

    /** Why not even one sequence fits: the smallest peaks (everything that can leave a tier, gone) against the capacities. */
    private String noFit() {
        HardwareProfile hw = model.hardware();
        if (options.gpuBatchSize > 0 || options.numGpuBatches > 0) {
            return String.format(Locale.ROOT, "no offloading policy with GPU batch size %s and %s GPU batches fits %s in %.0f%% of GPU %.2f GiB, "
                            + "CPU %.2f GiB, disk %.2f GiB; let the search choose them, or give more memory",
                    options.gpuBatchSize > 0 ? options.gpuBatchSize : "any", options.numGpuBatches > 0 ? options.numGpuBatches : "any",
                    model.model().name(), 100 * options.headroom, gib(hw.gpuMemory()), gib(hw.cpuMemory()), gib(hw.diskMemory()));
        }
        ModelShape m = model.model();
        boolean c = options.compression;
        CostModel.Terms t = model.terms(new CostModel.Shape(1, 1, c, c, true));
        double[] allCpu = {0, 1, 0, 1, 0, 1}, allDisk = {0, 0, 0, 0, 0, 1};
        double gpu = Math.max(t.gpuPrefill().at(allDisk), t.gpuDecode().at(allDisk));
        double cpu = Math.max(t.cpuPrefill().at(allDisk), t.cpuDecode().at(allDisk));
        double total = t.disk().at(allDisk);
        double h = options.headroom;
        String tier = gpu > h * hw.gpuMemory() ? String.format(Locale.ROOT, "the GPU needs %.2f GiB with every tensor offloaded", gib(gpu))
                : cpu > h * hw.cpuMemory() ? String.format(Locale.ROOT, "the CPU needs %.2f GiB of staging buffers", gib(cpu))
                : String.format(Locale.ROOT, "weights and KV cache of one sequence take %.2f GiB, more than GPU + CPU + disk allow",
                gib(Math.max(total, t.cpuDecode().at(allCpu))));
        return String.format(Locale.ROOT, "no offloading policy fits %s (prompt %d, generation %d%s) in %.0f%% of GPU %.2f GiB, "
                        + "CPU %.2f GiB, disk %.2f GiB: even with GPU batch 1, %s; give more memory%s",
                m.name(), model.promptLen(), model.genLen(), c ? ", 4-bit compression" : "", 100 * h,
                gib(hw.gpuMemory()), gib(hw.cpuMemory()), gib(hw.diskMemory()), tier, c ? "" : " or allow 4-bit compression (--compress)");
    }

    private static double gib(double b) { return b / HardwareProfile.GIB; }
}
