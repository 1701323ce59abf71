package dev.tandem.core.tokenizer;

import java.util.Arrays;
import java.util.PriorityQueue;

/**
 * Repeatedly merges the best adjacent pair of a token sequence (lowest priority, leftmost on ties) until no pair
 * merges. Equivalent to rescanning the whole sequence after each merge, as llama2.c does, but O(n log n): the
 * symbols form a linked list and candidate pairs sit in a heap; stale candidates are skipped when popped.
 */
final class PairMerger {
    private PairMerger() {}

    /** A candidate merge of the symbols starting at {@code left} and {@code right}, as they were when pushed. */
    private record Candidate(int priority, int left, int right, int leftLen, int rightLen, int merged) {}

    static int[] merge(int[] symbols, MergeRule rule) {
        int n = symbols.length;
        if (n < 2) return symbols.clone();
        int[] id = symbols.clone();
        int[] len = new int[n]; // span of original symbols covered; 0 once merged into its left neighbour
        int[] next = new int[n];
        int[] prev = new int[n];
        Arrays.fill(len, 1);
        for (int i = 0; i < n; i++) {
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
        }
        PriorityQueue<Candidate> heap = new PriorityQueue<>(
                (a, b) -> a.priority != b.priority ? Integer.compare(a.priority, b.priority)
                        : Integer.compare(a.left, b.left));
        for (int i = 0; i + 1 < n; i++) push(heap, rule, id, len, i, i + 1);
        while (!heap.isEmpty()) {
            Candidate c = heap.poll();
            int l = c.left, r = c.right;
            // The pair is stale if either side has since been merged with something else.
            if (len[l] != c.leftLen || next[l] != r || len[r] != c.rightLen) continue;
            id[l] = c.merged;
            len[l] += len[r];
            len[r] = 0;
            next[l] = next[r];
            if (next[r] >= 0) prev[next[r]] = l;
            if (prev[l] >= 0) push(heap, rule, id, len, prev[l], l);
            if (next[l] >= 0) push(heap, rule, id, len, l, next[l]);
        }
        int count = 0;
        for (int i = 0; i >= 0; i = next[i]) count++;
        int[] out = new int[count];
        int k = 0;
        for (int i = 0; i >= 0; i = next[i]) out[k++] = id[i];
        return out;
    }

    private static void push(PriorityQueue<Candidate> heap, MergeRule rule, int[] id, int[] len, int l, int r) {
        long m = rule.merge(id[l], id[r]);
        if (m != MergeRule.NO_MERGE) heap.add(new Candidate((int) (m >> 32), l, r, len[l], len[r], (int) m));
    }
}
