package dev.tandem.core.model;

import dev.tandem.core.backend.AttentionBatch;

/**
 * The input of one forward pass over a mixed batch: every token's id, position and KV slot, the attention
 * metadata per sequence, and which rows need logits (usually the last token of each sequence).
 */
public record StepBatch(int[] tokens, int[] positions, int[] slots, java.util.List<AttentionBatch.Seq> seqs, int[] logitRows) {
    public StepBatch {
        if (tokens.length != positions.length || tokens.length != slots.length) {
            throw new IllegalArgumentException("tokens, positions and slots differ in length");
        }
    }

    public int size() { return tokens.length; }
}
