package dev.tandem.engine.spec;

import dev.tandem.core.sampling.Sampler;

import java.util.Arrays;

/**
 * Modified rejection sampling (Leviathan et al. 2023, Chen et al. 2023): the target scored the last committed
 * token and each of the k draft tokens in one pass; draft token i is kept with probability min(1, p_i(x) / q_i(x)),
 * the first rejection is replaced by a draw from the normalised max(0, p_i - q_i), and when all k are kept a bonus
 * token is drawn from p_k. The output then follows the target's distribution exactly. p and q are the sequence's
 * {@link Sampler} transforms (penalties over the history including the earlier drafts, temperature, top-k, top-p,
 * min-p) applied to target and draft logits alike. Greedy is the special case of point masses: a draft token is
 * kept iff it is the target's argmax, and the argmax replaces the first that is not, so the output is the
 * non-speculative greedy output token for token.
 */
public final class Verifier {
    private float[] p = new float[0], residual = new float[0];

    /** The emitted tokens (the accepted draft prefix, then the corrected or bonus token) and how many drafts were kept. */
    public record Verdict(int[] tokens, int accepted) {}

    /**
     * Greedy verification from each row's argmax ({@code argmax[from + i]} follows draft token i - 1, as computed where
     * the logits live): the same verdict {@link #verify} gives at temperature 0 without penalties.
     */
    public static Verdict greedy(int[] argmax, int from, Draft draft) {
        int k = draft.size();
        for (int i = 0; i < k; i++) {
            if (argmax[from + i] != draft.tokens()[i]) return new Verdict(Arrays.copyOfRange(argmax, from, from + i + 1), i);
        }
        return new Verdict(Arrays.copyOfRange(argmax, from, from + k + 1), k);
    }

    /**
     * @param history the sequence's committed tokens, {@code committed} of them valid
     * @param logits  k + 1 rows of target logits: row i predicts the token after draft i (row 0: after the history);
     *                modified
     */
    public Verdict verify(Sampler sampler, int[] history, int committed, Draft draft, float[][] logits) {
        int k = draft.size();
        int[] hist = Arrays.copyOf(history, committed + k + 1);
        System.arraycopy(draft.tokens(), 0, hist, committed, k);
        int[] out = new int[k + 1];
        if (sampler.params().greedy() && draft.probs() == null) {
            for (int i = 0; i <= k; i++) {
                int t = sampler.sample(logits[i], hist, committed + i);
                out[i] = t;
                if (i == k || t != draft.tokens()[i]) return new Verdict(Arrays.copyOf(out, i + 1), i);
            }
        }
        int vocab = logits[0].length;
        if (p.length != vocab) {
            p = new float[vocab];
            residual = new float[vocab];
        }
        for (int i = 0; i < k; i++) {
            int x = draft.tokens()[i];
            sampler.distribution(logits[i], hist, committed + i, p);
            float q = draft.q(i);
            // Accept with min(1, p/q): u < p/q, written as u*q < p so that q = 0 (cannot happen for a drawn token) never divides.
            if (sampler.nextUniform() * q < p[x]) {
                out[i] = x;
                continue;
            }
            double mass = 0;
            for (int v = 0; v < vocab; v++) {
                float qv = draft.probs() == null ? (v == x ? 1f : 0f) : draft.probs()[i][v];
                residual[v] = Math.max(0f, p[v] - qv);
                mass += residual[v];
            }
            // p == q up to rounding leaves no residual mass; then p itself is the right distribution.
            out[i] = sampler.drawDense(mass > 0 ? residual : p);
            return new Verdict(Arrays.copyOf(out, i + 1), i);
        }
        out[k] = sampler.sample(logits[k], hist, committed + k);
        return new Verdict(out, k);
    }
}
