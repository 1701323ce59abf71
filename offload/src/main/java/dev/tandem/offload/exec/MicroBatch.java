package dev.tandem.offload.exec;

import dev.tandem.core.backend.AttentionBatch;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.sampling.Sampler;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One block of sequences (FlexGen's {@code gpuBatchSize * numGpuBatches}) on its way through the stages: the tokens so
 * far, and the segments of its next forward pass. The devices' state for it (KV caches, hand-off buffers) is found by
 * its {@link #slot()}; with pipeline parallelism several blocks are in flight, each in its own slot.
 */
final class MicroBatch {
    /** One segment of a GPU batch: whole sequences whose rows go through a layer together. */
    static final class Segment {
        final int batch;
        final int[] seqs; // indices within the batch
        int[] tokens, positions, slots, logitRows;
        AttentionBatch ab;
        int rows;

        Segment(int batch, int[] seqs) {
            this.batch = batch;
            this.seqs = seqs;
        }
    }

    /** One forward pass of this block: prefill (whole prompts) or one decode step. */
    record Pass(MicroBatch batch, List<Segment> segments, boolean prefill) {}

    private final List<OffloadedGenerator.Request> requests;
    private final ModelConfig config;
    private final int slot, gbs, batches, capacity, maxChunkRows, eos, maxNew;
    private final float scale;
    private final int[][] sequences; // prompt then generated tokens
    private final int[] length;      // tokens so far
    private final boolean[] finished;
    private final Sampler[] samplers;
    private int passes;

    /**
     * @param slot     which KV caches and hand-off buffers the block uses on every stage
     * @param capacity KV slots per sequence (the run's buffers' capacity, a multiple of the KV block size)
     */
    MicroBatch(List<OffloadedGenerator.Request> requests, int slot, ModelConfig config, int gpuBatchSize, int capacity, int maxChunkRows, int eos) {
        this.requests = requests;
        this.config = config;
        this.slot = slot;
        this.gbs = gpuBatchSize;
        this.capacity = capacity;
        this.maxChunkRows = maxChunkRows;
        this.eos = eos;
        this.scale = (float) (1.0 / Math.sqrt(config.headDim()));
        int n = requests.size();
        batches = Math.ceilDiv(n, gbs);
        sequences = new int[n][];
        length = new int[n];
        finished = new boolean[n];
        samplers = new Sampler[n];
        int most = 0;
        for (int i = 0; i < n; i++) {
            OffloadedGenerator.Request r = requests.get(i);
            sequences[i] = Arrays.copyOf(r.prompt(), r.prompt().length + r.maxNewTokens());
            length[i] = r.prompt().length;
            samplers[i] = new Sampler(r.sampling());
            most = Math.max(most, r.maxNewTokens());
        }
        maxNew = most;
    }

    int slot() { return slot; }

    int size() { return requests.size(); }

    int capacity() { return capacity; }

    /** The prefill pass: every prompt, cut into segments. */
    Pass prefill() {
        passes = 1;
        return new Pass(this, prefillSegments(), true);
    }

    /** The next decode pass, or null when every sequence is done. */
    Pass next() {
        if (passes >= maxNew) return null;
        passes++;
        List<Segment> segs = decodeSegments();
        return segs.isEmpty() ? null : new Pass(this, segs, false);
    }

    /** Tokens generated per request, in request order. */
    List<int[]> outputs() {
        List<int[]> out = new ArrayList<>();
        for (int i = 0; i < requests.size(); i++) out.add(Arrays.copyOfRange(sequences[i], requests.get(i).prompt().length, length[i]));
        return out;
    }

    long promptTokens() { return requests.stream().mapToLong(r -> r.prompt().length).sum(); }

    int global(int batch, int seq) { return batch * gbs + seq; }

    /** Tokens so far of sequence {@code seq} of GPU batch {@code batch}. */
    int length(int batch, int seq) { return length[global(batch, seq)]; }

    private int batchSize(int j) { return Math.min(gbs, requests.size() - j * gbs); }

    /** Whole sequences per segment, at most maxChunkRows prompt tokens each (a longer prompt is a segment alone). */
    private List<Segment> prefillSegments() {
        List<Segment> segs = new ArrayList<>();
        for (int j = 0; j < batches; j++) {
            List<Integer> cur = new ArrayList<>();
            int rows = 0;
            for (int s = 0; s < batchSize(j); s++) {
                int len = length[global(j, s)];
                if (!cur.isEmpty() && rows + len > maxChunkRows) {
                    segs.add(segment(j, cur, true));
                    cur.clear();
                    rows = 0;
                }
                cur.add(s);
                rows += len;
            }
            if (!cur.isEmpty()) segs.add(segment(j, cur, true));
        }
        return segs;
    }

    /** One segment per batch: every unfinished sequence's newest token. */
    private List<Segment> decodeSegments() {
        List<Segment> segs = new ArrayList<>();
        for (int j = 0; j < batches; j++) {
            List<Integer> cur = new ArrayList<>();
            for (int s = 0; s < batchSize(j); s++) if (!finished[global(j, s)]) cur.add(s);
            if (!cur.isEmpty()) segs.add(segment(j, cur, false));
        }
        return segs;
    }

    private Segment segment(int j, List<Integer> seqList, boolean prefill) {
        Segment sg = new Segment(j, seqList.stream().mapToInt(Integer::intValue).toArray());
        int rows = 0;
        for (int s : sg.seqs) rows += prefill ? length[global(j, s)] : 1;
        sg.rows = rows;
        sg.tokens = new int[rows];
        sg.positions = new int[rows];
        sg.slots = new int[rows];
        sg.logitRows = new int[sg.seqs.length];
        List<AttentionBatch.Seq> abSeqs = new ArrayList<>();
        int bs = KvLayout.DEFAULT_BLOCK_SIZE, perSeq = capacity / bs, r = 0;
        for (int i = 0; i < sg.seqs.length; i++) {
            int s = sg.seqs[i], g = global(j, s), len = length[g];
            int start = prefill ? 0 : len - 1, count = prefill ? len : 1;
            int[] table = new int[perSeq];
            for (int bI = 0; bI < perSeq; bI++) table[bI] = s * perSeq + bI;
            abSeqs.add(new AttentionBatch.Seq(r, count, start + count, table));
            for (int c = 0; c < count; c++, r++) {
                sg.tokens[r] = sequences[g][start + c];
                sg.positions[r] = start + c;
                sg.slots[r] = s * capacity + start + c;
            }
            sg.logitRows[i] = r - 1;
        }
        sg.ab = new AttentionBatch(abSeqs, config.heads(), config.kvHeads(), config.headDim(), scale);
        return sg;
    }

    /** Whether every sequence of the segment samples greedily (then the device picks the argmax). */
    boolean greedy(Segment sg) {
        boolean greedy = true;
        for (int s : sg.seqs) greedy &= requests.get(global(sg.batch, s)).sampling().argmaxOnly();
        return greedy;
    }

    /** A token for the i-th sequence of the segment from its logits row, by its own sampler. */
    int sample(Segment sg, int i, float[] logits) {
        int g = global(sg.batch, sg.seqs[i]);
        return samplers[g].sample(logits, sequences[g], length[g]);
    }

    /** Appends each sequence's new token; a sequence finishes at end-of-sequence or at its max tokens. */
    void append(Segment sg, int[] next) {
        for (int i = 0; i < sg.seqs.length; i++) {
            int g = global(sg.batch, sg.seqs[i]);
            sequences[g][length[g]++] = next[i];
            if (next[i] == eos || length[g] - requests.get(g).prompt().length >= requests.get(g).maxNewTokens()) finished[g] = true;
        }
    }
}
