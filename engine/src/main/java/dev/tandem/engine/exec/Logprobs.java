package dev.tandem.engine.exec;

import dev.tandem.engine.TokenEvent;

/** Log-probabilities from the model's raw logits (before penalties and temperature), as vLLM reports them. */
final class Logprobs {
    private Logprobs() {}

    static TokenEvent of(float[] logits, int chosen, int top) {
        float max = Float.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double sum = 0;
        for (float l : logits) sum += Math.exp(l - max);
        float logZ = (float) (max + Math.log(sum));
        int[] ids = new int[top];
        float[] lps = new float[top];
        // Selection of the top n by repeated scans: n is at most 20.
        boolean[] taken = new boolean[top > 0 ? logits.length : 0];
        for (int k = 0; k < top; k++) {
            int best = -1;
            for (int i = 0; i < logits.length; i++) if (!taken[i] && (best < 0 || logits[i] > logits[best])) best = i;
            taken[best] = true;
            ids[k] = best;
            lps[k] = logits[best] - logZ;
        }
        return new TokenEvent(chosen, logits[chosen] - logZ, ids, lps);
    }
}
