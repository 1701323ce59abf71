package dev.tandem.core.backend;

import java.util.List;

/**
 * Attention metadata of one step: which query rows belong to which sequence, how long each sequence's
 * context is, and where its tokens live in the paged cache.
 */
public record AttentionBatch(List<Seq> seqs, int heads, int kvHeads, int headDim, float scale) {

    /**
     * One sequence of the step: query rows [qStart, qStart + qLen) are its newest tokens, at positions
     * [ctxLen - qLen, ctxLen); each attends to every position up to its own. blockTable[i] is the cache
     * block holding positions [i * blockSize, (i + 1) * blockSize).
     */
    public record Seq(int qStart, int qLen, int ctxLen, int[] blockTable) {
        public Seq {
            if (qLen <= 0 || ctxLen < qLen) throw new IllegalArgumentException("qLen " + qLen + " ctxLen " + ctxLen);
        }
    }

    public int groupSize() { return heads / kvHeads; }
}
