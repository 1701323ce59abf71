package dev.tandem.core.sampling;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * The sampler chain: penalties, then (greedy: argmax) temperature, top-k, softmax, top-p, min-p, draw.
 * Each step is a small method over the candidate list; a fixed seed reproduces the draws.
 */
public final class Sampler {
    private final SamplingParams params;
    private final SplittableRandom random;
    private float[] probs = new float[0];
    private int[] order = new int[0];
    private long[] keys = new long[0];

    public Sampler(SamplingParams params) {
        this.params = params;
        this.random = new SplittableRandom(params.seed());
    }

    public SamplingParams params() { return params; }

    /**
     * Moves the random stream past the draws of {@code tokens} tokens sampled elsewhere (one draw per sampled
     * token), so that a sequence handed to another worker continues with the draws it would have made.
     */
    public void skip(int tokens) {
        if (params.greedy()) return;
        for (int i = 0; i < tokens; i++) random.nextDouble();
    }

    /**
     * Picks the next token. {@code logits} is modified (penalties, temperature). {@code history} holds the
     * tokens so far (prompt and generated), of which the last {@code historyLen} are valid.
     */
    public int sample(float[] logits, int[] history, int historyLen) {
        applyPenalties(logits, history, historyLen);
        if (params.greedy()) return argmax(logits);
        return draw(filter(logits));
    }

    /**
     * The distribution {@link #sample} draws from, written densely into {@code out} (as long as the vocabulary):
     * the same penalties, temperature, top-k, top-p and min-p, renormalised over the kept tokens, zero elsewhere.
     * Greedy is a point mass on the argmax. Speculative decoding compares the target's and the draft's this way.
     * {@code logits} is modified.
     */
    public void distribution(float[] logits, int[] history, int historyLen, float[] out) {
        applyPenalties(logits, history, historyLen);
        Arrays.fill(out, 0f);
        if (params.greedy()) {
            out[argmax(logits)] = 1f;
            return;
        }
        int k = filter(logits);
        double total = 0;
        for (int i = 0; i < k; i++) total += probs[i];
        for (int i = 0; i < k; i++) out[order[i]] = (float) (probs[i] / total);
    }

    /** Draws a token from dense, possibly unnormalised, non-negative weights with this sampler's stream. */
    public int drawDense(float[] weights) {
        double total = 0;
        for (float w : weights) total += w;
        double r = random.nextDouble() * total, cum = 0;
        int last = 0;
        for (int i = 0; i < weights.length; i++) {
            if (weights[i] <= 0) continue;
            cum += weights[i];
            last = i;
            if (r < cum) return i;
        }
        return last;
    }

    /** Temperature, top-k, softmax, top-p, min-p: leaves the kept candidates in order/probs and returns their count. */
    private int filter(float[] logits) {
        int n = logits.length;
        if (probs.length != n) {
            probs = new float[n];
            order = new int[n];
        }
        float invT = 1f / params.temperature();
        for (int i = 0; i < n; i++) logits[i] *= invT;
        int k = candidates(logits);
        softmax(logits, k);
        k = topP(k);
        return minP(k);
    }

    /** The next draw of this sampler's seeded stream in [0, 1), for sampling done on a device. */
    public float nextUniform() {
        return Math.min((float) random.nextDouble(), 0x1.fffffep-1f);
    }

    /** First index of the largest value (ties go to the lowest id, as torch.argmax does). */
    public static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }

    /** Per-token counts of the history, reused across calls and cleared after each use (only touched ids). */
    private int[] counts = new int[0];

    private void applyPenalties(float[] logits, int[] history, int historyLen) {
        boolean repeat = params.repeatPenalty() != 1f && params.repeatLastN() > 0;
        boolean freq = params.presencePenalty() != 0f || params.frequencyPenalty() != 0f;
        if (!repeat && !freq) return;
        if (counts.length != logits.length) counts = new int[logits.length];
        if (repeat) {
            // llama.cpp / CTRL: shrink positive logits, push negative ones further down; once per distinct token.
            int from = Math.max(0, historyLen - params.repeatLastN());
            for (int i = from; i < historyLen; i++) {
                int t = history[i];
                if (t < 0 || t >= logits.length || counts[t]++ > 0) continue;
                logits[t] = logits[t] > 0 ? logits[t] / params.repeatPenalty() : logits[t] * params.repeatPenalty();
            }
            for (int i = from; i < historyLen; i++) if (history[i] >= 0 && history[i] < logits.length) counts[history[i]] = 0;
        }
        if (freq) {
            for (int i = 0; i < historyLen; i++) if (history[i] >= 0 && history[i] < logits.length) counts[history[i]]++;
            for (int i = 0; i < historyLen; i++) {
                int t = history[i];
                if (t < 0 || t >= logits.length || counts[t] == 0) continue;
                logits[t] -= params.frequencyPenalty() * counts[t] + params.presencePenalty();
                counts[t] = 0; // applied once per distinct token, and the array is left clean
            }
        }
    }

    /** Sorts candidate ids by logit, keeping the top-k (all when k is 0); returns how many remain. */
    private int candidates(float[] logits) {
        int n = logits.length;
        int k = params.topK() > 0 ? Math.min(params.topK(), n) : n;
        // Sort (descending logit, ascending id) as one primitive long per token: no boxing on the hot path.
        if (keys.length != n) keys = new long[n];
        for (int i = 0; i < n; i++) keys[i] = ((long) descendingKey(logits[i]) << 32) | i;
        if (k < n / 8) {
            selectSmallest(keys, k);
            Arrays.sort(keys, 0, k);
        } else {
            Arrays.sort(keys);
        }
        for (int i = 0; i < k; i++) order[i] = (int) keys[i];
        return k;
    }

    /** An int that orders floats from largest to smallest (as signed ints). */
    private static int descendingKey(float f) {
        int bits = Float.floatToIntBits(f);
        int ascending = bits >= 0 ? bits : bits ^ 0x7fffffff;
        return ~ascending;
    }

    /** Moves the k smallest keys to the front (quickselect). */
    private static void selectSmallest(long[] a, int k) {
        int lo = 0, hi = a.length - 1;
        while (lo < hi) {
            long pivot = a[(lo + hi) >>> 1];
            int i = lo, j = hi;
            while (i <= j) {
                while (a[i] < pivot) i++;
                while (a[j] > pivot) j--;
                if (i <= j) {
                    long t = a[i]; a[i] = a[j]; a[j] = t;
                    i++; j--;
                }
            }
            if (k - 1 <= j) hi = j;
            else if (k - 1 >= i) lo = i;
            else return;
        }
    }

    private void softmax(float[] logits, int k) {
        float max = logits[order[0]];
        double sum = 0;
        for (int i = 0; i < k; i++) {
            probs[i] = (float) Math.exp(logits[order[i]] - max);
            sum += probs[i];
        }
        for (int i = 0; i < k; i++) probs[i] /= (float) sum;
    }

    private int topP(int k) {
        if (params.topP() >= 1f) return k;
        double cum = 0;
        for (int i = 0; i < k; i++) {
            cum += probs[i];
            if (cum >= params.topP()) return i + 1;
        }
        return k;
    }

    private int minP(int k) {
        if (params.minP() <= 0f) return k;
        float threshold = probs[0] * params.minP();
        int keep = 1;
        while (keep < k && probs[keep] >= threshold) keep++;
        return keep;
    }

    private int draw(int k) {
        double total = 0;
        for (int i = 0; i < k; i++) total += probs[i];
        double r = random.nextDouble() * total;
        double cum = 0;
        for (int i = 0; i < k; i++) {
            cum += probs[i];
            if (r < cum) return order[i];
        }
        return order[k - 1];
    }
}
