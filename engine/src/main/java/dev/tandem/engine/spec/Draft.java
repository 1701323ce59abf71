package dev.tandem.engine.spec;

/**
 * A drafter's proposal for one sequence.
 *
 * @param tokens the proposed continuation (may be empty)
 * @param probs  for each proposed token, the dense distribution it was drawn from (after the request's sampling
 *               transforms); null when the drafter is deterministic, i.e. a point mass on each token (n-gram, greedy)
 */
public record Draft(int[] tokens, float[][] probs) {
    public static final Draft NONE = new Draft(new int[0], null);

    public Draft {
        if (probs != null && probs.length != tokens.length) {
            throw new IllegalArgumentException(tokens.length + " draft tokens but " + probs.length + " distributions");
        }
    }

    public int size() { return tokens.length; }

    /** Probability the drafter gave its i-th token (1 for a deterministic drafter). */
    public float q(int i) { return probs == null ? 1f : probs[i][tokens[i]]; }
}
