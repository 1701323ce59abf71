package dev.tandem.engine.spec;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.engine.sched.Scheduler;
import dev.tandem.engine.sched.Sequence;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The engine's side of speculative decoding: how many draft tokens each decoding sequence may take this step
 * (fixed k, or adaptive from its running acceptance), asking the {@link Drafter} for them, and the counters.
 * Backend-agnostic: the draft model runs on whatever {@link Backend} the engine was given.
 */
public final class Speculator implements AutoCloseable {
    /** Weight of one observed position in a sequence's running acceptance estimate. */
    private static final double ALPHA_STEP = 0.1;
    /** Acceptance assumed before a sequence has been observed (about what the test pair reaches on greedy output). */
    private static final double ALPHA_PRIOR = 0.6;

    private final SpeculativeConfig config;
    private final Drafter drafter;
    private final int kMax;
    private final Map<Sequence, double[]> alphas = new IdentityHashMap<>();
    private long drafts, draftTokens, acceptedTokens, fullyAccepted, draftNanos, verifyNanos, verifySteps;
    private final long[] acceptedPerPosition, draftedPerPosition;
    /** Steps of up to this many tokens (or sequences) are timed one by one for adaptive k's cost model. */
    private static final int TRACK = 512;
    /** Running time of a target step by its number of tokens, and of one draft pass by its number of sequences (0: not seen). */
    private final double[] stepNanos = new double[TRACK + 1], draftPassNanos = new double[TRACK + 1];
    private final Map<Sequence, int[]> probes = new IdentityHashMap<>();

    public Speculator(SpeculativeConfig config, Drafter drafter) {
        this.config = config;
        this.drafter = drafter;
        this.kMax = config.numSpeculativeTokens();
        this.acceptedPerPosition = new long[kMax];
        this.draftedPerPosition = new long[kMax];
    }

    /** The drafter the configuration asks for, on the engine's backend, with a KV cache sized like the target's. */
    public static Speculator create(SpeculativeConfig config, ModelConfig target, Backend backend, int targetBlocks, int blockSize,
                                    int maxTokens, int maxSeqs) {
        Drafter d;
        if (config.draftModel() == null) {
            d = new NgramDrafter(config.ngramMin(), config.ngramMax());
        } else {
            // As many blocks as the target, plus each sequence's drafted tail.
            int extra = maxSeqs * ((config.numSpeculativeTokens() + blockSize - 1) / blockSize + 1);
            d = new DraftModelDrafter(config.draftModel(), target, backend, targetBlocks + extra, blockSize, maxTokens, maxSeqs);
        }
        return new Speculator(config, d);
    }

    public Drafter drafter() { return drafter; }

    public SpeculativeConfig config() { return config; }

    /** Most draft tokens any sequence takes in one step. */
    public int maxSpeculativeTokens() { return kMax; }

    /**
     * How many draft tokens the sequence may take next step: 0 when it opted out or the tokens could not be used.
     * {@code batch} is the number of running sequences (adaptive k weighs the cost of scoring drafts for all of them).
     */
    public int lookahead(Sequence seq, int contextLength, int batch) {
        if (!seq.request().speculative()) return 0;
        // Drafts past max_tokens or the context are wasted: at most (left - 1) drafts, since a bonus token always comes.
        int left = Math.min(seq.request().maxTokens() - seq.generated(), contextLength - seq.numTokens() + 1);
        int k = Math.min(config.adaptive() ? adaptiveK(seq, Math.max(1, batch)) : kMax, left - 1);
        return Math.max(0, k);
    }

    /**
     * The k (0 = plain decode) that maximises expected tokens per second, (1 - α^(k+1)) / (1 - α) over the time of
     * k draft passes and a target step scoring k + 1 tokens per sequence, with the sequence's running α and the step
     * and draft times measured so far on this machine (the batch assumed to speculate alike). On a CPU a step of
     * several tokens per sequence can cost much more than a plain one, which is why the times are measured, not
     * assumed. A sequence that does not speculate still drafts every 32nd step, so that its α keeps up to date.
     */
    private int adaptiveK(Sequence seq, int batch) {
        double a = Math.min(0.99, alphas.computeIfAbsent(seq, s -> new double[] {ALPHA_PRIOR})[0]);
        double plain = stepTime(batch);
        int best = 0, bestK = 1;
        double bestRate = 0, bestDrafting = 0;
        if (!Double.isNaN(plain)) bestRate = 1 / plain;
        for (int k = 1; k <= kMax; k++) {
            double tokens = (1 - Math.pow(a, k + 1)) / (1 - a);
            // Nothing timed yet (the first step): the configured relative cost alone.
            double time = Double.isNaN(plain) ? 1 + k * config.verifyCostPerToken() : stepTime(batch * (k + 1)) + k * draftPassTime(batch);
            double rate = tokens / time;
            if (rate > bestDrafting) {
                bestDrafting = rate;
                bestK = k;
            }
            if (rate > bestRate) {
                bestRate = rate;
                best = k;
            }
        }
        if (best == 0 && ++probes.computeIfAbsent(seq, s -> new int[1])[0] % 32 == 0) return bestK;
        return best;
    }

    /**
     * Time of a target step of {@code tokens} tokens: measured, or interpolated between the nearest sizes measured on
     * either side, or scaled down from the nearest larger one, or extrapolated along the slope of the two largest measured below it (with only one size measured,
     * {@link SpeculativeConfig#verifyCostPerToken()} of it per extra token: optimistic, so larger k get tried and
     * measured). NaN before any step was timed.
     */
    private double stepTime(int tokens) {
        int t = Math.min(tokens, TRACK);
        if (stepNanos[t] > 0 && t == tokens) return stepNanos[t];
        int below = t, above = t + 1;
        while (below >= 1 && stepNanos[below] == 0) below--;
        while (above <= TRACK && stepNanos[above] == 0) above++;
        // Nothing smaller measured: scale the nearest larger step down in proportion (a lower bound, so plain decoding
        // gets tried and measured rather than assumed as dear as a verification).
        if (below < 1) return above <= TRACK ? stepNanos[above] * tokens / above : Double.NaN;
        if (above <= TRACK) return stepNanos[below] + (stepNanos[above] - stepNanos[below]) * (tokens - below) / (above - below);
        int second = below - 1;
        while (second >= 1 && stepNanos[second] == 0) second--;
        double slope = second >= 1 ? Math.max(0, (stepNanos[below] - stepNanos[second]) / (below - second))
                : stepNanos[below] * config.verifyCostPerToken();
        return stepNanos[below] + slope * (tokens - below);
    }

    private double draftPassTime(int batch) {
        for (int b = Math.min(batch, TRACK); b >= 1; b--) if (draftPassNanos[b] > 0) return draftPassNanos[b] * batch / b;
        return 0;
    }

    /** Times every target step (plain or verifying), by the number of tokens it ran. */
    public void observeStep(int tokens, long nanos) {
        if (tokens >= 1 && tokens <= TRACK) stepNanos[tokens] = stepNanos[tokens] == 0 ? nanos : 0.8 * stepNanos[tokens] + 0.2 * nanos;
    }

    /** Drafts for the step's sequences that were given a lookahead, aligned with {@code step} (NONE for the others). */
    public List<Draft> propose(List<Scheduler.Scheduled> step) {
        long t0 = System.nanoTime();
        List<Drafter.Request> requests = new ArrayList<>();
        for (Scheduler.Scheduled s : step) if (s.lookahead() > 0) requests.add(new Drafter.Request(s.seq(), s.lookahead()));
        List<Draft> out = new ArrayList<>(step.size());
        if (requests.isEmpty()) {
            for (int i = 0; i < step.size(); i++) out.add(Draft.NONE);
            return out;
        }
        List<Draft> made = drafter.propose(requests);
        int j = 0, maxK = 0;
        for (Scheduler.Scheduled s : step) {
            if (s.lookahead() > 0) {
                Draft d = made.get(j++);
                if (d.size() > s.lookahead()) throw new IllegalStateException(drafter.name() + " drafted " + d.size() + " tokens, asked for " + s.lookahead());
                out.add(d);
                maxK = Math.max(maxK, d.size());
            } else {
                out.add(Draft.NONE);
            }
        }
        long dt = System.nanoTime() - t0;
        draftNanos += dt;
        // Drafting k tokens takes k passes over the sequences that draft (the first also catching up).
        int b = Math.min(requests.size(), TRACK);
        if (maxK > 0) draftPassNanos[b] = draftPassNanos[b] == 0 ? dt / (double) maxK : 0.8 * draftPassNanos[b] + 0.2 * dt / maxK;
        return out;
    }

    /** Times the target pass that scored this step's drafts. */
    public void verifiedStep(long nanos) {
        verifyNanos += nanos;
        verifySteps++;
    }

    /** The target kept {@code accepted} of the draft proposed after the sequence's first {@code committed} tokens. */
    public void verified(Sequence seq, int committed, Draft draft, int accepted) {
        int k = draft.size();
        if (k == 0) return;
        drafts++;
        draftTokens += k;
        acceptedTokens += accepted;
        if (accepted == k) fullyAccepted++;
        for (int i = 0; i < k; i++) {
            draftedPerPosition[i]++;
            if (i < accepted) acceptedPerPosition[i]++;
        }
        if (config.adaptive()) {
            double[] a = alphas.computeIfAbsent(seq, s -> new double[] {ALPHA_PRIOR});
            for (int i = 0; i < Math.min(k, accepted + 1); i++) a[0] += ALPHA_STEP * ((i < accepted ? 1 : 0) - a[0]);
        }
        drafter.accepted(seq, committed, k, accepted);
    }

    /** The sequence left the engine. */
    public void release(Sequence seq) {
        alphas.remove(seq);
        probes.remove(seq);
        drafter.release(seq);
    }

    public SpecDecodeStats stats() {
        return new SpecDecodeStats(drafter.name(), drafts, draftTokens, acceptedTokens, acceptedPerPosition.clone(), draftedPerPosition.clone(),
                fullyAccepted, draftNanos, verifyNanos, verifySteps);
    }

    @Override
    public void close() { drafter.close(); }
}
