package dev.tandem.engine.spec;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.AttentionBatch;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.kv.BlockPool;
import dev.tandem.core.kv.BlockTable;
import dev.tandem.core.model.DecoderModel;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.StepBatch;
import dev.tandem.core.sampling.Sampler;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.engine.sched.Sequence;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small model with the target's tokenizer drafts k tokens autoregressively, all speculating sequences batched
 * into each of its forward passes. It keeps its own paged KV cache per sequence: before drafting it catches up on
 * the tokens the target committed since (the prompt the first time, then the corrected or bonus token), and after
 * verification it forgets the rejected positions, so its cache always matches a prefix of the committed tokens.
 * At temperature > 0 it samples with the request's own sampling transforms and reports the distributions it drew
 * from, as exact rejection sampling needs.
 */
public final class DraftModelDrafter implements Drafter {
    private final Model draft;
    private final DecoderModel model;
    private final Backend backend;
    private final KvStorage kv;
    private final BlockPool pool;
    private final int budget;
    private final float[] row;
    private final Map<Sequence, State> states = new IdentityHashMap<>();

    /** A sequence's draft-side state: its blocks, how many of its tokens are in them, its own random stream. */
    private static final class State {
        final BlockTable table;
        final Sampler sampler;
        int computed;

        State(BlockPool pool, SamplingParams params) {
            this.table = new BlockTable(pool);
            // Its own stream, derived from the request's seed: draws stay reproducible and independent of the target's.
            this.sampler = new Sampler(new SamplingParams(params.temperature(), params.topK(), params.topP(), params.minP(),
                    params.repeatPenalty(), params.repeatLastN(), params.presencePenalty(), params.frequencyPenalty(),
                    params.seed() ^ 0x5DEECE66DL));
        }
    }

    /**
     * @param numBlocks  KV blocks of the draft's own cache (the engine gives it as many as the target's, plus room for drafts)
     * @param maxTokens  most tokens in one draft pass (catching up on long prompts is split into passes of this size)
     * @param maxSeqs    most sequences drafting at once
     */
    public DraftModelDrafter(Model draft, ModelConfig target, Backend backend, int numBlocks, int blockSize, int maxTokens, int maxSeqs) {
        ModelConfig c = draft.config();
        if (c.vocabSize() != target.vocabSize()) {
            throw new IllegalArgumentException("the draft model's vocabulary has " + c.vocabSize() + " tokens, the target's " + target.vocabSize()
                    + ": a draft model must share the target's tokenizer");
        }
        this.draft = draft;
        this.backend = backend;
        this.budget = Math.max(maxTokens, maxSeqs);
        this.model = DecoderModel.create(c, draft.weights(), backend, budget, maxSeqs);
        this.pool = new BlockPool(numBlocks, blockSize);
        this.kv = backend.allocateKv(new KvLayout(c.layers(), numBlocks, blockSize, c.kvHeads(), c.headDim()));
        this.row = new float[c.vocabSize()];
    }

    @Override
    public List<Draft> propose(List<Request> requests) {
        int m = requests.size();
        State[] st = new State[m];
        int[] committed = new int[m];
        int[][] hist = new int[m][];
        int[][] tokens = new int[m][];
        float[][][] probs = new float[m][][];
        int maxK = 0;
        for (int i = 0; i < m; i++) {
            Sequence seq = requests.get(i).seq();
            int k = requests.get(i).k();
            committed[i] = seq.numTokens();
            State s = states.computeIfAbsent(seq, q -> new State(pool, q.request().sampling()));
            // Positions up to committed + k - 2 are written (the last draft token is never fed back).
            if (!s.table.ensureCapacity(committed[i] + k - 1)) {
                release(seq); // no room now: this sequence decodes plainly and starts over later
                continue;
            }
            s.computed = Math.min(s.computed, committed[i] - 1); // the last committed token is fed again to draft from it
            st[i] = s;
            hist[i] = Arrays.copyOf(seq.tokens(), committed[i] + k);
            tokens[i] = new int[k];
            if (!seq.request().sampling().greedy()) probs[i] = new float[k][];
            maxK = Math.max(maxK, k);
        }
        // First token: catch up on everything not yet in the draft cache (in passes of at most `budget` tokens).
        boolean pending = true;
        while (pending) {
            pending = false;
            Batch b = new Batch();
            for (int i = 0; i < m; i++) {
                State s = st[i];
                if (s == null || s.computed >= committed[i]) continue;
                int chunk = Math.min(committed[i] - s.computed, budget - b.size);
                if (chunk <= 0) {
                    pending = true;
                    continue;
                }
                b.add(i, s, hist[i], s.computed, chunk);
            }
            if (b.size == 0) break;
            Activation out = model.forward(b.build(), kv);
            for (int j = 0; j < b.members.size(); j++) {
                int i = b.members.get(j);
                st[i].computed += b.counts.get(j);
                if (st[i].computed == committed[i]) pick(out, j, st[i], hist[i], committed[i], tokens[i], probs[i], 0);
                else pending = true;
            }
        }
        // Then one token per pass for every sequence that wants more.
        for (int d = 1; d < maxK; d++) {
            Batch b = new Batch();
            for (int i = 0; i < m; i++) {
                if (st[i] == null || tokens[i].length <= d) continue;
                b.add(i, st[i], hist[i], committed[i] + d - 1, 1);
            }
            if (b.size == 0) break;
            Activation out = model.forward(b.build(), kv);
            for (int j = 0; j < b.members.size(); j++) {
                int i = b.members.get(j);
                st[i].computed = committed[i] + d;
                pick(out, j, st[i], hist[i], committed[i], tokens[i], probs[i], d);
            }
        }
        List<Draft> result = new ArrayList<>(m);
        for (int i = 0; i < m; i++) result.add(st[i] == null ? Draft.NONE : new Draft(tokens[i], probs[i]));
        return result;
    }

    /** Draws draft token d from logits row j, greedily or from the request's transformed distribution. */
    private void pick(Activation out, int j, State s, int[] hist, int committed, int[] tokens, float[][] probs, int d) {
        backend.read(out, j, row);
        int t;
        if (probs == null) {
            t = s.sampler.sample(row, hist, committed + d);
        } else {
            float[] q = new float[row.length];
            s.sampler.distribution(row, hist, committed + d, q);
            t = s.sampler.drawDense(q);
            probs[d] = q;
        }
        tokens[d] = t;
        hist[committed + d] = t;
    }

    /** The sequences of one draft pass: their token chunks and a logits row at the end of each. */
    private static final class Batch {
        final List<Integer> members = new ArrayList<>(), counts = new ArrayList<>();
        final List<AttentionBatch.Seq> seqs = new ArrayList<>();
        int[] tokens = new int[16], positions = new int[16], slots = new int[16];
        int size;

        void add(int member, State s, int[] hist, int start, int count) {
            while (size + count > tokens.length) {
                tokens = Arrays.copyOf(tokens, tokens.length * 2);
                positions = Arrays.copyOf(positions, positions.length * 2);
                slots = Arrays.copyOf(slots, slots.length * 2);
            }
            for (int i = 0; i < count; i++) {
                tokens[size + i] = hist[start + i];
                positions[size + i] = start + i;
                slots[size + i] = s.table.slot(start + i);
            }
            seqs.add(new AttentionBatch.Seq(size, count, start + count, s.table.blocks()));
            size += count;
            members.add(member);
            counts.add(count);
        }

        StepBatch build() {
            int[] rows = new int[seqs.size()];
            for (int j = 0; j < rows.length; j++) rows[j] = seqs.get(j).qStart() + seqs.get(j).qLen() - 1;
            return new StepBatch(Arrays.copyOf(tokens, size), Arrays.copyOf(positions, size), Arrays.copyOf(slots, size), seqs, rows);
        }
    }

    @Override
    public void accepted(Sequence seq, int committed, int drafted, int accepted) {
        State s = states.get(seq);
        if (s == null) return;
        // Draft positions past the accepted prefix hold rejected tokens: forget them and the blocks only they used.
        s.computed = Math.min(s.computed, committed + accepted);
        s.table.truncate(committed + accepted + 1);
    }

    @Override
    public void release(Sequence seq) {
        State s = states.remove(seq);
        if (s != null) s.table.release();
    }

    /** Blocks of the draft cache not held by any sequence (all of them once every sequence is released). */
    public int freeBlocks() { return pool.freeBlocks(); }

    public int numBlocks() { return pool.numBlocks(); }

    @Override
    public String name() {
        ModelConfig c = draft.config();
        return "draft model (" + c.architecture() + ", " + c.layers() + " layers, dim " + c.dim() + ")";
    }

    @Override
    public void close() {
        for (State s : states.values()) s.table.release();
        states.clear(); // the cache's memory belongs to the backend, freed with it
    }
}
