package dev.tandem.core.tokenizer;

/** Which adjacent pairs of tokens merge, into what, and in which order. */
interface MergeRule {
    long NO_MERGE = -1;

    /**
     * {@code (priority << 32) | mergedId} for a pair that merges, else {@link #NO_MERGE}. Lower priority merges
     * first; equal priorities merge leftmost first.
     */
    long merge(int left, int right);

    static long pack(int priority, int merged) { return ((long) priority << 32) | (merged & 0xffffffffL); }
}
