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

    /**
     * Checks that the step fits a model set up for {@code maxTokens} tokens per step and that every token id is in the
     * vocabulary (a bad id would read outside the embedding table).
     */
    public void check(int maxTokens, int vocabSize) {
        int n = size();
        if (n == 0 || n > maxTokens) throw new IllegalArgumentException("step of " + n + " tokens; this model was set up for 1.." + maxTokens);
        for (int t : tokens) {
            if (t < 0 || t >= vocabSize) throw new IllegalArgumentException("token id " + t + " outside the vocabulary of " + vocabSize);
        }
    }

    /**
     * The block-table stride of this step: the longest context rounded up to a power of two (at least 256 tokens), in
     * blocks, capped by the model's context. A replaying backend records one step per stride, so a recording serves
     * every step whose contexts fit, and short contexts do not pay for the model's full context in metadata.
     */
    public int blockTableStride(int blockSize, int contextLength) {
        int longest = 1;
        for (AttentionBatch.Seq s : seqs) longest = Math.max(longest, s.ctxLen());
        int bucket = Math.max(256, Integer.highestOneBit(Math.max(1, longest - 1)) << 1);
        return Math.ceilDiv(Math.min(bucket, contextLength), blockSize);
    }

    /**
     * One sequence's positions [start, start + count) (its tokens taken from {@code sequence}), with logits for the
     * given rows of the step (0 = position start). The table must already hold blocks for start + count positions.
     */
    public static StepBatch ofSequence(int[] sequence, int start, int count, dev.tandem.core.kv.BlockTable table, int... logitRows) {
        int[] ids = java.util.Arrays.copyOfRange(sequence, start, start + count);
        int[] positions = new int[count], slots = new int[count];
        for (int i = 0; i < count; i++) {
            positions[i] = start + i;
            slots[i] = table.slot(start + i);
        }
        var seq = new AttentionBatch.Seq(0, count, start + count, table.blocks());
        return new StepBatch(ids, positions, slots, java.util.List.of(seq), logitRows);
    }

    /**
     * One decode token per sequence, all at {@code position}: sequence i's token is tokens[i], its KV goes to position
     * {@code position} of tables[i] (which must already hold it), and every row asks for its logits.
     */
    public static StepBatch decode(int[] tokens, int position, java.util.List<dev.tandem.core.kv.BlockTable> tables) {
        int n = tables.size();
        int[] positions = new int[n], slots = new int[n], rows = new int[n];
        java.util.List<AttentionBatch.Seq> seqs = new java.util.ArrayList<>(n);
        for (int s = 0; s < n; s++) {
            dev.tandem.core.kv.BlockTable t = tables.get(s);
            positions[s] = position;
            slots[s] = t.slot(position);
            rows[s] = s;
            seqs.add(new AttentionBatch.Seq(s, 1, position + 1, t.blocks()));
        }
        return new StepBatch(tokens.clone(), positions, slots, seqs, rows);
    }
}
