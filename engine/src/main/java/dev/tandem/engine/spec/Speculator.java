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
    /** Running cost of one draft position relative to one target pass (drafting time per position over verify time). */
    private double draftCost = Double.NaN;
    private double lastStepDraftNanos, lastStepMaxK;

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

    /** How many draft tokens the sequence may take next step: 0 when it opted out or the tokens could not be used. */
    public int lookahead(Sequence seq, int contextLength) {
        if (!seq.request().speculative()) return 0;
        // Drafts past max_tokens or the context are wasted: at most (left - 1) drafts, since a bonus token always comes.
        int left = Math.min(seq.request().maxTokens() - seq.generated(), contextLength - seq.numTokens() + 1);
        int k = Math.min(config.adaptive() ? adaptiveK(seq) : kMax, left - 1);
        return Math.max(0, k);
    }

    /**
     * k maximising expected tokens per unit of time, (1 - α^(k+1)) / (1 - α) / (1 + k (c + v)), with the sequence's
     * running α, the measured draft cost c per position and the target's extra cost v per scored token.
     */
    private int adaptiveK(Sequence seq) {
        double a = Math.min(0.99, alphas.computeIfAbsent(seq, s -> new double[] {ALPHA_PRIOR})[0]);
        double cost = (Double.isNaN(draftCost) ? 0.1 : draftCost) + config.verifyCostPerToken();
        int best = 1;
        double bestRate = 0;
        for (int k = 1; k <= kMax; k++) {
            double rate = (1 - Math.pow(a, k + 1)) / (1 - a) / (1 + k * cost);
            if (rate > bestRate) {
                bestRate = rate;
                best = k;
            }
        }
        return best;
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
        lastStepDraftNanos = dt;
        lastStepMaxK = maxK;
        return out;
    }

    /** Times the target pass that scored this step's drafts; feeds the draft cost estimate of adaptive k. */
    public void verifiedStep(long nanos) {
        verifyNanos += nanos;
        verifySteps++;
        if (lastStepMaxK > 0 && nanos > 0) {
            double c = lastStepDraftNanos / lastStepMaxK / nanos;
            draftCost = Double.isNaN(draftCost) ? c : 0.9 * draftCost + 0.1 * c;
        }
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
        drafter.release(seq);
    }

    public SpecDecodeStats stats() {
        return new SpecDecodeStats(drafter.name(), drafts, draftTokens, acceptedTokens, acceptedPerPosition.clone(), draftedPerPosition.clone(),
                fullyAccepted, draftNanos, verifyNanos, verifySteps);
    }

    @Override
    public void close() { drafter.close(); }
}
