package dev.tandem.engine.spec;

/**
 * Counters of speculative decoding, as vLLM's spec-decode metrics count them, plus where the time went.
 *
 * @param drafts              verifications of a non-empty draft (one per sequence per step)
 * @param draftTokens         draft tokens proposed and scored
 * @param acceptedTokens      draft tokens the target kept
 * @param acceptedPerPosition how often the i-th draft token was kept
 * @param draftedPerPosition  how often an i-th draft token was proposed
 * @param fullyAccepted       drafts kept whole (no rejection, the target added a bonus token)
 * @param draftNanos          time spent drafting
 * @param verifyNanos         time of the target passes that scored drafts (the whole step, other sequences included)
 * @param verifySteps         target passes that scored drafts
 */
public record SpecDecodeStats(String drafter, long drafts, long draftTokens, long acceptedTokens, long[] acceptedPerPosition,
                              long[] draftedPerPosition, long fullyAccepted, long draftNanos, long verifyNanos, long verifySteps) {
    public static final SpecDecodeStats OFF = new SpecDecodeStats("off", 0, 0, 0, new long[0], new long[0], 0, 0, 0, 0);

    public boolean enabled() { return this != OFF; }

    /** Fraction of draft tokens kept (vLLM's draft acceptance rate). */
    public double acceptanceRate() { return draftTokens == 0 ? 0 : acceptedTokens / (double) draftTokens; }

    /** Tokens emitted per verification: the kept drafts plus the corrected or bonus token (vLLM's mean acceptance length). */
    public double meanAcceptanceLength() { return drafts == 0 ? 0 : 1 + acceptedTokens / (double) drafts; }

    /**
     * The per-token acceptance probability α under the i.i.d. model of Leviathan et al.: kept tokens over tested
     * tokens (every kept one plus the first rejected one of each draft not kept whole). Drafts cut short by k make
     * acceptedTokens / draftTokens underestimate it.
     */
    public double alpha() {
        long tested = acceptedTokens + (drafts - fullyAccepted);
        return tested == 0 ? 0 : acceptedTokens / (double) tested;
    }

    /**
     * Two workers' counters summed, as one engine would report them (a cluster's router adds up its token workers');
     * OFF is the identity.
     */
    public SpecDecodeStats plus(SpecDecodeStats o) {
        if (!o.enabled()) return this;
        if (!enabled()) return o;
        int n = Math.max(acceptedPerPosition.length, o.acceptedPerPosition.length);
        long[] acc = new long[n], drafted = new long[n];
        for (int i = 0; i < n; i++) {
            acc[i] = at(acceptedPerPosition, i) + at(o.acceptedPerPosition, i);
            drafted[i] = at(draftedPerPosition, i) + at(o.draftedPerPosition, i);
        }
        return new SpecDecodeStats(drafter.equals(o.drafter) ? drafter : drafter + "+" + o.drafter, drafts + o.drafts, draftTokens + o.draftTokens,
                acceptedTokens + o.acceptedTokens, acc, drafted, fullyAccepted + o.fullyAccepted, draftNanos + o.draftNanos,
                verifyNanos + o.verifyNanos, verifySteps + o.verifySteps);
    }

    private static long at(long[] a, int i) { return i < a.length ? a[i] : 0; }

    /** Acceptance rate of the i-th draft position among drafts that reached it. */
    public double acceptanceAt(int i) { return draftedPerPosition[i] == 0 ? 0 : acceptedPerPosition[i] / (double) draftedPerPosition[i]; }
}
