package dev.tandem.engine.exec;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.AttentionBatch;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.model.LlamaModel;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.ModelWeights;
import dev.tandem.core.model.StepBatch;
import dev.tandem.engine.TokenEvent;
import dev.tandem.engine.kv.KvCacheManager;
import dev.tandem.engine.sched.Scheduler;
import dev.tandem.engine.sched.Sequence;

import java.util.ArrayList;
import java.util.List;

/**
 * Runs one scheduled step as a single forward pass over every sequence's chunk, then samples a token for each
 * sequence whose chunk reached its end. Logits are read back only for those rows.
 */
public final class ModelRunner {
    private final LlamaModel model;
    private final Backend backend;
    private final KvStorage kv;
    private final KvCacheManager blocks;
    private final float[] logits;
    private final float[] raw;

    public ModelRunner(ModelConfig config, ModelWeights weights, Backend backend, KvCacheManager blocks, int maxTokens, int maxSeqs) {
        this.backend = backend;
        this.blocks = blocks;
        this.model = new LlamaModel(config, weights, backend, maxTokens, maxSeqs);
        this.kv = backend.allocateKv(new KvLayout(config.layers(), blocks.numBlocks(), blocks.blockSize(), config.kvHeads(), config.headDim()));
        this.logits = new float[config.vocabSize()];
        this.raw = new float[config.vocabSize()];
    }

    /** A sampled token for one sequence. */
    public record Sampled(Sequence seq, TokenEvent event) {}

    /** Bytes of KV cache one token takes in all layers (f32 keys and values). */
    public static long kvBytesPerToken(ModelConfig c) { return 2L * c.layers() * c.kvDim() * Float.BYTES; }

    public List<Sampled> execute(List<Scheduler.Scheduled> step) {
        int n = 0;
        for (Scheduler.Scheduled s : step) n += s.count();
        int[] tokens = new int[n], positions = new int[n], slots = new int[n];
        List<AttentionBatch.Seq> seqs = new ArrayList<>(step.size());
        List<Sequence> sampling = new ArrayList<>();
        int[] logitRows = new int[step.size()];
        int row = 0, r = 0;
        for (Scheduler.Scheduled s : step) {
            Sequence seq = s.seq();
            for (int i = 0; i < s.count(); i++) {
                int p = s.start() + i;
                tokens[row + i] = seq.tokens()[p];
                positions[row + i] = p;
                slots[row + i] = blocks.slot(seq, p);
            }
            seqs.add(new AttentionBatch.Seq(row, s.count(), s.start() + s.count(), seq.blockTable()));
            row += s.count();
            if (s.samples()) {
                logitRows[r++] = row - 1;
                sampling.add(seq);
            }
        }
        int[] rows = java.util.Arrays.copyOf(logitRows, r);
        Activation out = model.forward(new StepBatch(tokens, positions, slots, seqs, rows), kv);
        for (Scheduler.Scheduled s : step) {
            s.seq().setNumComputed(s.start() + s.count());
            blocks.registerFullBlocks(s.seq(), s.seq().numComputed());
        }
        List<Sampled> result = new ArrayList<>(sampling.size());
        int[] argmax = sampleOnBackend(out, sampling);
        for (int i = 0; i < sampling.size(); i++) {
            Sequence seq = sampling.get(i);
            if (argmax != null) {
                result.add(new Sampled(seq, new TokenEvent(argmax[i], Float.NaN, new int[0], new float[0])));
                continue;
            }
            backend.read(out, i, logits);
            int top = seq.request().topLogprobs();
            if (top >= 0) System.arraycopy(logits, 0, raw, 0, logits.length);
            int token = seq.sampler().sample(logits, seq.tokens(), seq.numTokens());
            result.add(new Sampled(seq, top >= 0 ? Logprobs.of(raw, token, top) : new TokenEvent(token, Float.NaN, new int[0], new float[0])));
        }
        return result;
    }

    /**
     * Samples every row where the logits live when no sequence needs the host (penalties, logprobs): greedy batches
     * through the backend's argmax, others through its sampler when it has one (on a GPU one int per sequence crosses
     * PCIe instead of the vocabulary's logits). Returns null when the rows must be read and sampled on the host.
     */
    private int[] sampleOnBackend(Activation out, List<Sequence> sampling) {
        if (sampling.isEmpty()) return null;
        boolean greedy = true;
        for (Sequence seq : sampling) {
            dev.tandem.core.sampling.SamplingParams p = seq.sampler().params();
            if (p.penalized() || seq.request().topLogprobs() >= 0) return null;
            greedy &= p.greedy();
        }
        int n = sampling.size();
        int[] ids = new int[n];
        if (greedy) {
            backend.argmax(out, ids);
            return ids;
        }
        if (!backend.samplesOnDevice()) return null;
        float[] temperature = new float[n], topP = new float[n], minP = new float[n], uniform = new float[n];
        int[] topK = new int[n];
        for (int i = 0; i < n; i++) {
            var sampler = sampling.get(i).sampler();
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
