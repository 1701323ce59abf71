package dev.tandem.engine.exec;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.AttentionBatch;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.model.DecoderModel;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.ModelWeights;
import dev.tandem.core.model.StepBatch;
import dev.tandem.engine.TokenEvent;
import dev.tandem.engine.handover.LayerStreamer;
import dev.tandem.engine.kv.KvCacheManager;
import dev.tandem.engine.sched.Scheduler;
import dev.tandem.engine.sched.Sequence;
import dev.tandem.engine.spec.Draft;
import dev.tandem.engine.spec.Verifier;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Runs one scheduled step as a single forward pass over every sequence's chunk, then samples a token for each
 * sequence whose chunk reached its end. Logits are read back only for those rows. A sequence with a draft
 * (speculative decoding) has its draft tokens scored in the same pass, one logits row per position, and the
 * {@link Verifier} decides how many to keep; the KV positions of rejected drafts are given back.
 */
public final class ModelRunner {
    private final DecoderModel model;
    private final Backend backend;
    private final KvStorage kv;
    private final KvCacheManager blocks;
    private final Verifier verifier = new Verifier();
    private final int vocab;
    private float[][] rows = new float[0][];
    private float[][] raws = new float[0][];

    public ModelRunner(ModelConfig config, ModelWeights weights, Backend backend, KvCacheManager blocks, int maxTokens, int maxLogitRows) {
        this.backend = backend;
        this.blocks = blocks;
        this.model = DecoderModel.create(config, weights, backend, maxTokens, maxLogitRows);
        this.kv = backend.allocateKv(new KvLayout(config.layers(), blocks.numBlocks(), blocks.blockSize(), config.kvHeads(), config.headDim()));
        this.vocab = config.vocabSize();
    }

    /** The cache's memory, for hand-overs of sequences in and out of this worker. */
    public KvStorage kvStorage() { return kv; }

    /**
     * The tokens a sequence got this step: one, or after a draft the kept draft tokens and the corrected or bonus
     * token ({@code drafted} > 0, {@code accepted} of them kept).
     */
    public record Sampled(Sequence seq, List<TokenEvent> events, int drafted, int accepted) {
        public Sampled(Sequence seq, TokenEvent event) { this(seq, List.of(event), 0, 0); }

        public TokenEvent event() { return events.get(0); }
    }

    /** Bytes of KV cache one token takes in all layers (f32 keys and values). */
    public static long kvBytesPerToken(ModelConfig c) { return 2L * c.layers() * c.kvDim() * Float.BYTES; }

    private long lastForwardCallNanos;

    public List<Sampled> execute(List<Scheduler.Scheduled> step) { return execute(step, null); }

    /**
     * Host time of the last step's forward call: the whole pass on the CPU; on a GPU the host's side of it (the launches,
     * and any copy that waits for the device), the device's remaining work then showing in the sampling that follows.
     */
    public long lastForwardCallNanos() { return lastForwardCallNanos; }

    /** @param drafts per scheduled entry (aligned with {@code step}), its draft tokens; null when nobody speculates */
    public List<Sampled> execute(List<Scheduler.Scheduled> step, List<Draft> drafts) {
        int n = 0, j = 0;
        for (Scheduler.Scheduled s : step) n += s.count() + draft(drafts, j++).size();
        int[] tokens = new int[n], positions = new int[n], slots = new int[n];
        List<AttentionBatch.Seq> seqs = new ArrayList<>(step.size());
        List<Scheduler.Scheduled> sampling = new ArrayList<>();
        List<Draft> samplingDrafts = new ArrayList<>();
        int[] logitRows = new int[n];
        int row = 0, r = 0;
        j = 0;
        for (Scheduler.Scheduled s : step) {
            Sequence seq = s.seq();
            Draft d = draft(drafts, j++);
            if (d.size() > 0 && (!s.samples() || d.size() > s.lookahead())) {
                throw new IllegalStateException("a draft of " + d.size() + " tokens for sequence " + seq.id() + " that reserved " + s.lookahead());
            }
            for (int i = 0; i < s.count(); i++) {
                int p = s.start() + i;
                tokens[row + i] = seq.tokens()[p];
                positions[row + i] = p;
                slots[row + i] = blocks.slot(seq, p);
            }
            for (int i = 0; i < d.size(); i++) {
                int p = s.start() + s.count() + i;
                tokens[row + s.count() + i] = d.tokens()[i];
                positions[row + s.count() + i] = p;
                slots[row + s.count() + i] = blocks.slot(seq, p);
            }
            int len = s.count() + d.size();
            seqs.add(new AttentionBatch.Seq(row, len, s.start() + len, seq.blockTable()));
            if (s.samples()) {
                for (int i = s.count() - 1; i < len; i++) logitRows[r++] = row + i; // the last committed token's row, then each draft's
                sampling.add(s);
                samplingDrafts.add(d);
            }
            row += len;
        }
        // A prompt worker's hand-overs stream each layer's blocks as soon as the layer wrote them.
        long f0 = System.nanoTime();
        Activation out = model.forward(new StepBatch(tokens, positions, slots, seqs, Arrays.copyOf(logitRows, r)), kv,
                LayerStreamer.forStep(step, blocks.blockSize()));
        lastForwardCallNanos = System.nanoTime() - f0;
        for (Scheduler.Scheduled s : step) {
            s.seq().setNumComputed(s.start() + s.count());
            blocks.registerFullBlocks(s.seq(), s.seq().numComputed());
        }
        List<Sampled> result = new ArrayList<>(sampling.size());
        int outRow = 0;
        int[] onBackend = sampleOnBackend(out, sampling, samplingDrafts, r);
        for (int i = 0; i < sampling.size(); i++) {
            Sequence seq = sampling.get(i).seq();
            Draft d = samplingDrafts.get(i);
            if (onBackend != null) {
                // Greedy (or device-sampled) without logits on the host: a draft is kept while it equals the row's argmax.
                Verifier.Verdict v = Verifier.greedy(onBackend, outRow, d);
                outRow += d.size() + 1;
                List<TokenEvent> events = new ArrayList<>(v.tokens().length);
                for (int t : v.tokens()) events.add(new TokenEvent(t, Float.NaN, new int[0], new float[0]));
                seq.setNumComputed(seq.numComputed() + v.accepted());
                if (d.size() > 0 || sampling.get(i).lookahead() > 0) blocks.trim(seq, seq.numTokens() + v.tokens().length);
                result.add(new Sampled(seq, events, d.size(), v.accepted()));
                continue;
            }
            int top = seq.request().topLogprobs();
            int k = d.size();
            ensureRows(k + 1);
            for (int x = 0; x <= k; x++) {
                backend.read(out, outRow++, rows[x]);
                if (top >= 0) System.arraycopy(rows[x], 0, raws[x], 0, vocab);
            }
            if (k == 0) {
                int token = seq.sampler().sample(rows[0], seq.tokens(), seq.numTokens());
                if (sampling.get(i).lookahead() > 0) blocks.trim(seq, seq.numTokens() + 1); // reserved for a draft that did not come
                result.add(new Sampled(seq, event(raws[0], token, top)));
                continue;
            }
            Verifier.Verdict v = verifier.verify(seq.sampler(), seq.tokens(), seq.numTokens(), d, rows);
            List<TokenEvent> events = new ArrayList<>(v.tokens().length);
            for (int x = 0; x < v.tokens().length; x++) events.add(event(raws[x], v.tokens()[x], top));
            // The last committed token and the kept drafts are now in the cache; positions after them held rejected drafts.
            seq.setNumComputed(seq.numComputed() + v.accepted());
            blocks.trim(seq, seq.numTokens() + v.tokens().length);
            result.add(new Sampled(seq, events, k, v.accepted()));
        }
        return result;
    }

    private static Draft draft(List<Draft> drafts, int i) { return drafts == null ? Draft.NONE : drafts.get(i); }

    private static TokenEvent event(float[] raw, int token, int top) {
        return top >= 0 ? Logprobs.of(raw, token, top) : new TokenEvent(token, Float.NaN, new int[0], new float[0]);
    }

    private void ensureRows(int count) {
        if (rows.length >= count) return;
        int old = rows.length;
        rows = Arrays.copyOf(rows, count);
        raws = Arrays.copyOf(raws, count);
        for (int i = old; i < count; i++) {
            rows[i] = new float[vocab];
            raws[i] = new float[vocab];
        }
    }

    /**
     * Samples every logits row (one per sequence, plus one per draft token) where the logits live when no sequence
     * needs the host (penalties, logprobs): greedy batches through the backend's argmax, which is all greedy
     * verification needs, others through its sampler when it has one and nobody speculates (rejection sampling
     * compares whole distributions on the host). On a GPU one int per row crosses PCIe instead of the vocabulary's
     * logits. Returns null when the rows must be read and sampled on the host.
     */
    private int[] sampleOnBackend(Activation out, List<Scheduler.Scheduled> sampling, List<Draft> drafts, int rows) {
        if (sampling.isEmpty()) return null;
        boolean greedy = true, drafted = false;
        for (int i = 0; i < sampling.size(); i++) {
            Sequence seq = sampling.get(i).seq();
            dev.tandem.core.sampling.SamplingParams p = seq.sampler().params();
            if (p.penalized() || seq.request().topLogprobs() >= 0) return null;
            greedy &= p.greedy();
            drafted |= drafts.get(i).size() > 0;
        }
        if (greedy) {
            int[] ids = new int[rows];
            backend.argmax(out, ids);
            return ids;
        }
        if (drafted || !backend.samplesOnDevice()) return null;
        int n = sampling.size();
        int[] ids = new int[n];
        float[] temperature = new float[n], topP = new float[n], minP = new float[n], uniform = new float[n];
        int[] topK = new int[n];
        for (int i = 0; i < n; i++) {
            var sampler = sampling.get(i).seq().sampler();
            var p = sampler.params();
            temperature[i] = p.temperature();
            topK[i] = p.topK();
            topP[i] = p.topP();
            minP[i] = p.minP();
            uniform[i] = p.greedy() ? 0f : sampler.nextUniform();
        }
        backend.sample(out, temperature, topK, topP, minP, uniform, ids);
        return ids;
    }
}
