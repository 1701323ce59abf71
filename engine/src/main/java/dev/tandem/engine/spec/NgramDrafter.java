package dev.tandem.engine.spec;

import dev.tandem.engine.sched.Sequence;

import java.util.ArrayList;
import java.util.List;

/**
 * Prompt lookup: the longest suffix of the sequence (between {@code maxN} and {@code minN} tokens) that occurred
 * before, at its most recent earlier place, proposes the tokens that followed it there. No second model; it pays
 * off on text that repeats itself (the greedy output of small models, code, quoting the prompt). When the
 * continuation runs into the end of the sequence it keeps following its own proposal, so a repeating cycle is
 * drafted as far as k allows.
 */
public final class NgramDrafter implements Drafter {
    private final int minN, maxN;

    public NgramDrafter(int minN, int maxN) {
        if (minN < 1 || maxN < minN) throw new IllegalArgumentException("n-gram sizes must satisfy 1 <= min <= max, got " + minN + ".." + maxN);
        this.minN = minN;
        this.maxN = maxN;
    }

    @Override
    public List<Draft> propose(List<Request> requests) {
        List<Draft> out = new ArrayList<>(requests.size());
        for (Request r : requests) out.add(new Draft(find(r.seq().tokens(), r.seq().numTokens(), r.k()), null));
        return out;
    }

    /** Up to k tokens continuing {@code tokens[0, n)}, or none when no suffix recurs. */
    int[] find(int[] tokens, int n, int k) {
        for (int size = Math.min(maxN, n - 1); size >= minN; size--) {
            int suffix = n - size;
            for (int j = suffix - 1; j >= 0; j--) {
                if (!matches(tokens, j, suffix, size)) continue;
                int[] draft = new int[k];
                for (int i = 0; i < k; i++) {
                    int idx = j + size + i;
                    draft[i] = idx < n ? tokens[idx] : draft[idx - n];
                }
                return draft;
            }
        }
        return new int[0];
    }

    private static boolean matches(int[] t, int a, int b, int len) {
        for (int i = 0; i < len; i++) if (t[a + i] != t[b + i]) return false;
        return true;
    }

    @Override
    public String name() { return "ngram " + minN + ".." + maxN; }
}
