package dev.tandem.offload.exec;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.AttentionBatch;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.Weight;
import dev.tandem.core.backend.cpu.CpuActivation;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.backend.cpu.CpuThreadPool;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.sampling.Sampler;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import dev.tandem.offload.policy.OffloadPolicy;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * High-throughput generation for a model larger than device memory, on FlexGen's zig-zag block schedule: requests go
 * in blocks of {@code gpuBatchSize * numGpuBatches} sequences; for every generated token, for every layer, the layer's
 * weights are brought to the device once and every GPU batch of the block runs through it before the next layer, while
 * the following layer's weights stream in on a copy stream (disk reads one layer further ahead on an I/O thread).
 *
 * <p>The KV cache follows the policy: the first {@code cacheGpuPercent} of the layers keep theirs on the device, the rest
 * in host memory. A host-resident cache is attended to on the CPU ({@code cpuCacheCompute}, decode) or moved to the
 * device for the step. Prefill runs the prompt in chunks of whole sequences bounded by {@code maxChunkRows}, attention on
 * the device when there is one.
 */
public final class OffloadedGenerator implements AutoCloseable {
    /** One prompt to continue; generation stops after {@code maxNewTokens} or at the end-of-sequence token. */
    public record Request(int[] prompt, int maxNewTokens, SamplingParams sampling) {
        public Request {
            if (prompt.length == 0) throw new IllegalArgumentException("empty prompt");
            if (maxNewTokens < 1) throw new IllegalArgumentException("max_tokens must be at least 1, got " + maxNewTokens);
        }
    }

    /** Timing of one run, for throughput reports. */
    public record Stats(int sequences, long promptTokens, long generatedTokens, double prefillSeconds, double decodeSeconds,
                        long[] weightBytesByTier, long hostPeakBytes, long deviceBytes, long diskBytesRead,
                        double weightWaitSeconds, double hostAttentionSeconds, double deviceWaitSeconds) {
        public double seconds() { return prefillSeconds + decodeSeconds; }

        /** FlexGen's figure: generated tokens over the whole run (prefill included). */
        public double tokensPerSecond() { return generatedTokens / seconds(); }
    }

    /** Progress callback: sequences finished so far out of all. */
    public interface Progress {
        void update(int done, int total);
    }

    private final LayerProgram program;
    private final ModelConfig config;
    private final OffloadDevice device;
    private final Backend b;
    private final OffloadPolicy policy;
    private final OffloadedWeights weights;
    private final int maxChunkRows, eos;
    private final CpuThreadPool pool;
    private final boolean ownPool;
    private final float scale;
    private long layerCounter;
    // Where the host thread waits: for weights (disk reads), on CPU attention, for the device (step ends, q/k/v copies).
    private long weightWaitNanos, hostAttentionNanos, deviceWaitNanos;
    private Stats last;

    /**
     * @param disk         the disk tier, or null when the policy keeps nothing on disk
     * @param maxChunkRows most prompt tokens one prefill op covers (bounds device activation memory)
     * @param eos          end-of-sequence token id, or -1 to always generate max tokens
     */
    public OffloadedGenerator(LayerProgram program, OffloadDevice device, OffloadPolicy policy, DiskStore disk, int maxChunkRows, int eos) {
        this.program = program;
        this.config = program.config();
        this.device = device;
        this.b = device.backend();
        this.policy = policy;
        this.maxChunkRows = Math.max(1, maxChunkRows);
        this.eos = eos;
        if (policy.cacheDiskPercent() > 1e-9 || policy.actDiskPercent() > 1e-9) {
            throw new OffloadException("the KV cache and activations can live on the GPU or the CPU, not on disk (policy " + policy.format() + ")");
        }
        if (b instanceof CpuBackend cpu) {
            pool = cpu.pool();
            ownPool = false;
        } else {
            pool = new CpuThreadPool();
            ownPool = true;
        }
        this.scale = (float) (1.0 / Math.sqrt(config.headDim()));
        device.compressWeights(policy.compressWeight());
        this.weights = new OffloadedWeights(device, program, policy, disk);
    }

    public Stats lastStats() { return last; }

    /** Generated tokens per request, in request order. */
    public List<int[]> generate(List<Request> requests, Progress progress) {
        List<int[]> out = new ArrayList<>();
        int block = policy.blockSize();
        long promptTokens = 0, generated = 0;
        double prefill = 0, decode = 0;
        for (int i = 0; i < requests.size(); i += block) {
            List<Request> part = requests.subList(i, Math.min(requests.size(), i + block));
            if (buffers == null || !buffers.fits(requests)) buffers = new Buffers(requests);
            Buffers.BlockRun run = buffers.new BlockRun(part);
            out.addAll(run.run());
            prefill += run.prefillSeconds;
            decode += run.decodeSeconds;
            for (Request r : part) promptTokens += r.prompt().length;
            generated += run.generated;
            if (progress != null) progress.update(out.size(), requests.size());
        }
        last = new Stats(requests.size(), promptTokens, generated, prefill, decode, weights.bytesByTier(), device.host().peak(),
                device.deviceBytes(), weights.diskBytesRead(), weightWaitNanos / 1e9, hostAttentionNanos / 1e9, deviceWaitNanos / 1e9);
        return out;
    }

    /** One segment of a GPU batch: whole sequences whose rows go through a layer together. */
    private static final class Segment {
        final int batch;
        final int[] seqs; // indices within the batch
        int[] tokens, positions, slots, logitRows;
        AttentionBatch ab;
        Activation hidden;       // residual stream on the device, or
        MemorySegment hiddenHost; // in host memory
        int rows;

        Segment(int batch, int[] seqs) {
            this.batch = batch;
            this.seqs = seqs;
        }
    }

    /**
     * Device and host buffers of a run, allocated once for its largest block (device memory is not returned to the
     * backend until it closes, so blocks reuse them).
     */
    private final class Buffers {
        final int capacity, gpuCacheLayers, rows;
        final HostKvCache[] hostCache;
        final KvStorage[] deviceCache;
        final KvStorage tempKv;
        final Activation x, xb, qkv, q, k, v, att, proj, ffn, ffn2, gathered, norm, logits;
        final Activation[] decodeHidden;
        final List<Activation> segmentHidden = new ArrayList<>();
        final List<MemorySegment> segmentHiddenHost = new ArrayList<>();
        final MemorySegment qkvHost, attHost;

        Buffers(List<Request> all) {
            int gbs = Math.min(policy.gpuBatchSize(), all.size()), batches = Math.min(policy.numGpuBatches(), Math.ceilDiv(all.size(), gbs));
            int longest = 0, maxPrompt = 0;
            for (Request r : all) {
                longest = Math.max(longest, r.prompt().length + r.maxNewTokens());
                maxPrompt = Math.max(maxPrompt, r.prompt().length);
            }
            if (longest > config.contextLength()) {
                throw new OffloadException("a prompt plus max_tokens of " + longest + " tokens exceeds the model's context of " + config.contextLength());
            }
            int bs = KvLayout.DEFAULT_BLOCK_SIZE, kvDim = config.kvDim(), qDim = config.qDim();
            capacity = Math.ceilDiv(longest, bs) * bs;
            gpuCacheLayers = device.hostOnly() ? 0 : (int) Math.round(config.layers() * policy.cacheGpuPercent() / 100.0);
            HostKvCache.Format format = HostKvCache.Format.of(device.kvElementBytes(), policy.compressCache());
            hostCache = new HostKvCache[batches];
            deviceCache = new KvStorage[batches];
            for (int j = 0; j < batches; j++) {
                if (gpuCacheLayers < config.layers()) {
                    hostCache[j] = new HostKvCache(device.host(), config.layers() - gpuCacheLayers, gbs, capacity, config.kvHeads(),
                            config.headDim(), format);
                }
                if (gpuCacheLayers > 0) {
                    deviceCache[j] = b.allocateKv(new KvLayout(gpuCacheLayers, gbs * capacity / bs, bs, config.kvHeads(), config.headDim()));
                }
            }
            tempKv = device.hostOnly() || gpuCacheLayers == config.layers() ? null
                    : b.allocateKv(new KvLayout(1, gbs * capacity / bs, bs, config.kvHeads(), config.headDim()));
            rows = Math.max(Math.max(gbs, maxPrompt), Math.min(maxChunkRows, gbs * maxPrompt));
            boolean stacked = !device.hostOnly();
            x = b.allocate(rows, config.dim());
            xb = b.allocate(rows, config.dim());
            qkv = stacked ? b.allocate(rows, program.qkvCols()) : null;
            q = stacked ? qkv.columns(0, qDim) : b.allocate(rows, qDim);
            k = stacked ? qkv.columns(qDim, kvDim) : b.allocate(rows, kvDim);
            v = stacked ? qkv.columns(qDim + kvDim, kvDim) : b.allocate(rows, kvDim);
            att = b.allocate(rows, qDim);
            proj = b.allocate(rows, config.dim());
            ffn = b.allocate(rows, program.ffnCols());
            ffn2 = b.allocate(rows, config.hiddenDim());
            gathered = b.allocate(rows, config.dim());
            norm = b.allocate(rows, config.dim());
            logits = b.allocate(gbs, config.vocabSize());
            decodeHidden = new Activation[batches];
            for (int j = 0; j < batches; j++) decodeHidden[j] = batches == 1 ? x : b.allocate(gbs, config.dim());
            qkvHost = device.hostOnly() ? null : device.host().allocate(4L * gbs * program.qkvCols());
            attHost = device.hostOnly() ? null : device.host().allocate(4L * gbs * qDim);
            if (device instanceof CudaOffloadDevice c) c.checkCap();
        }

        boolean fits(List<Request> all) {
            for (Request r : all) if (r.prompt().length + r.maxNewTokens() > capacity || r.prompt().length > rows) return false;
            return Math.min(policy.gpuBatchSize(), all.size()) <= logits.rows();
        }

        /** The residual stream of prefill segment i: on the device when the policy keeps activations there. */
        void hidden(Segment sg, int i, boolean onlyOne) {
            if (onlyOne) {
                sg.hidden = x;
            } else if (policy.actGpuPercent() >= 100) {
                while (segmentHidden.size() <= i) segmentHidden.add(b.allocate(rows, config.dim()));
                sg.hidden = segmentHidden.get(i);
                if (device instanceof CudaOffloadDevice c) c.checkCap();
            } else {
                while (segmentHiddenHost.size() <= i) segmentHiddenHost.add(device.host().allocate(4L * rows * config.dim()));
                sg.hiddenHost = segmentHiddenHost.get(i);
            }
        }

        /** The state of one block: its sequences and segments, over the run's buffers (this Buffers' fields). */
        private final class BlockRun {
            final List<Request> requests;
            final int batches;
            final int[][] sequences; // prompt then generated tokens
            final int[] length;      // tokens so far
            final boolean[] finished;
            final Sampler[] samplers;
            final int kvDim = config.kvDim(), qDim = config.qDim();
            /** One K or V row on its way into a bf16 host cache (the engine-loop thread's only). */
            final float[] kvRow = new float[kvDim];
            double prefillSeconds, decodeSeconds;
            long generated;

            BlockRun(List<Request> requests) {
                this.requests = requests;
                int n = requests.size(), gbs = policy.gpuBatchSize();
                batches = Math.ceilDiv(n, gbs);
                sequences = new int[n][];
                length = new int[n];
                finished = new boolean[n];
                samplers = new Sampler[n];
                for (int i = 0; i < n; i++) {
                    Request r = requests.get(i);
                    sequences[i] = Arrays.copyOf(r.prompt(), r.prompt().length + r.maxNewTokens());
                    length[i] = r.prompt().length;
                    samplers[i] = new Sampler(r.sampling());
                }
            }

            List<int[]> run() {
                long t0 = System.nanoTime();
                List<Segment> prefill = prefillSegments();
                step(prefill, true);
                prefillSeconds = (System.nanoTime() - t0) / 1e9;
                long t1 = System.nanoTime();
                int maxNew = requests.stream().mapToInt(Request::maxNewTokens).max().orElse(0);
                for (int t = 1; t < maxNew; t++) {
                    List<Segment> segs = decodeSegments();
                    if (segs.isEmpty()) break;
                    step(segs, false);
                }
                decodeSeconds = (System.nanoTime() - t1) / 1e9;
                List<int[]> out = new ArrayList<>();
                for (int i = 0; i < requests.size(); i++) {
                    int p = requests.get(i).prompt().length;
                    out.add(Arrays.copyOfRange(sequences[i], p, length[i]));
                    generated += length[i] - p;
                }
                return out;
            }

            int global(int batch, int seq) { return batch * policy.gpuBatchSize() + seq; }

            int batchSize(int j) { return Math.min(policy.gpuBatchSize(), requests.size() - j * policy.gpuBatchSize()); }

            /** Whole sequences per segment, at most maxChunkRows prompt tokens each (a longer prompt is a segment alone). */
            List<Segment> prefillSegments() {
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
            List<Segment> decodeSegments() {
                List<Segment> segs = new ArrayList<>();
                for (int j = 0; j < batches; j++) {
                    List<Integer> cur = new ArrayList<>();
                    for (int s = 0; s < batchSize(j); s++) if (!finished[global(j, s)]) cur.add(s);
                    if (!cur.isEmpty()) segs.add(segment(j, cur, false));
                }
                return segs;
            }

            Segment segment(int j, List<Integer> seqList, boolean prefill) {
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

            /** One forward step of every segment, layer by layer (the zig-zag order), then one sampled token per sequence. */
            void step(List<Segment> segs, boolean prefill) {
                for (int i = 0; i < segs.size(); i++) {
                    Segment sg = segs.get(i);
                    if (prefill) hidden(sg, i, segs.size() == 1);
                    else sg.hidden = decodeHidden[sg.batch];
                }
                long w0 = System.nanoTime();
                if (layerCounter == 0) weights.prefetch(0);
                weightWaitNanos += System.nanoTime() - w0;
                for (int l = 0; l < config.layers(); l++) {
                    long n = layerCounter++;
                    long w1 = System.nanoTime();
                    Weight[] m = weights.acquire(n);
                    weights.prefetch(n + 1);
                    weightWaitNanos += System.nanoTime() - w1;
                    Weight[] vec = weights.vectors(l);
                    for (Segment sg : segs) {
                        Activation xs = sg.hidden != null ? sg.hidden.rows(sg.rows) : x.rows(sg.rows);
                        if (l == 0) {
                            b.beginStep(sg.tokens, sg.positions, sg.slots, sg.ab, capacity / KvLayout.DEFAULT_BLOCK_SIZE);
                            program.embed(b, weights.globals(), sg.tokens, sg.positions, xs);
                        } else if (sg.hiddenHost != null) {
                            device.fromHost(sg.hiddenHost, 0, xs, sg.rows);
                        }
                        layer(sg, l, m, vec, xs, prefill);
                        if (l + 1 == config.layers()) sample(sg, xs, prefill);
                        else if (sg.hiddenHost != null) device.toHost(xs, sg.rows, sg.hiddenHost, 0);
                    }
                    weights.release(n);
                }
                long s0 = System.nanoTime();
                device.synchronize();
                deviceWaitNanos += System.nanoTime() - s0;
            }

            void layer(Segment sg, int l, Weight[] m, Weight[] vec, Activation xs, boolean prefill) {
                int n = sg.rows;
                Activation xbN = xb.rows(n), qkvN = qkv == null ? null : qkv.rows(n), qN = q.rows(n), kN = k.rows(n), vN = v.rows(n);
                Activation attN = att.rows(n);
                b.beginStep(sg.tokens, sg.positions, sg.slots, sg.ab, capacity / KvLayout.DEFAULT_BLOCK_SIZE);
                program.beforeAttention(b, m, vec, xs, xbN, qkvN, qN, kN, vN);
                if (l < gpuCacheLayers) {
                    writeKv(qN, kN, vN, deviceCache[sg.batch], l, sg.positions, sg.slots);
                    b.attention(qN, deviceCache[sg.batch], l, sg.ab, attN);
                } else if (!device.hostOnly() && (prefill || !policy.cpuCacheCompute())) {
                    deviceAttention(sg, l - gpuCacheLayers, qN, kN, vN, attN, prefill);
                } else {
                    hostAttention(sg, l - gpuCacheLayers, qN, kN, vN, qkvN, attN);
                }
                program.afterAttention(b, m, vec, attN, xs, xbN, proj.rows(n), ffn.rows(n), ffn2.rows(n));
            }

            void writeKv(Activation qN, Activation kN, Activation vN, KvStorage kv, int layer, int[] positions, int[] slots) {
                if (program.rope() != null) {
                    b.ropeWriteKv(qN, kN, vN, config.heads(), config.kvHeads(), positions, program.rope(), kv, layer, slots);
                } else {
                    b.writeKv(kv, layer, kN, vN, slots);
                }
            }

            /** The host cache's layer on the device for this step: earlier positions copied in, new ones copied back out. */
            void deviceAttention(Segment sg, int hl, Activation qN, Activation kN, Activation vN, Activation attN, boolean prefill) {
                HostKvCache cache = hostCache[sg.batch];
                if (!prefill) {
                    for (int s : sg.seqs) {
                        int before = length[global(sg.batch, s)] - 1;
                        if (before > 0) device.kvFromHost(cache, hl, s, 0, before, tempKv, 0, (long) s * capacity);
                    }
                }
                writeKv(qN, kN, vN, tempKv, 0, sg.positions, sg.slots);
                b.attention(qN, tempKv, 0, sg.ab, attN);
                for (int i = 0; i < sg.seqs.length; i++) {
                    int s = sg.seqs[i], g = global(sg.batch, s), start = prefill ? 0 : length[g] - 1, count = prefill ? length[g] : 1;
                    device.kvToHost(tempKv, 0, (long) s * capacity + start, count, cache, hl, s, start);
                }
            }

            /** Attention on the CPU over the host cache: q, k, v come to the host, the result goes back. */
            void hostAttention(Segment sg, int hl, Activation qN, Activation kN, Activation vN, Activation qkvN, Activation attN) {
                HostKvCache cache = hostCache[sg.batch];
                int n = sg.rows, h = config.heads(), kvH = config.kvHeads(), hd = config.headDim();
                int[] seqOfRow = new int[n];
                for (int i = 0, r = 0; i < sg.seqs.length; i++) {
                    int rowsOfSeq = (i + 1 < sg.seqs.length ? sg.ab.seqs().get(i + 1).qStart() : n) - r;
                    for (int c = 0; c < rowsOfSeq; c++) seqOfRow[r++] = sg.seqs[i];
                }
                if (device.hostOnly()) {
                    if (program.rope() != null) {
                        b.rope(qN, h, sg.positions, program.rope());
                        b.rope(kN, kvH, sg.positions, program.rope());
                    }
                    MemorySegment qs = CpuActivation.of(qN).segment(), ks = CpuActivation.of(kN).segment(), vs = CpuActivation.of(vN).segment();
                    for (int r = 0; r < n; r++) {
                        store(ks, (long) r * kvDim * 4, cache.keys(hl), cache.offset(seqOfRow[r], sg.positions[r]), cache);
                        store(vs, (long) r * kvDim * 4, cache.values(hl), cache.offset(seqOfRow[r], sg.positions[r]), cache);
                    }
                    HostAttention.run(pool, qs, 0, qDim, cache, hl, seqOfRow, sg.positions, h, kvH, hd, scale, CpuActivation.of(attN).segment());
                    return;
                }
                if (program.rope() != null) {
                    int[] none = new int[n];
                    Arrays.fill(none, -1);
                    b.ropeWriteKv(qN, kN, vN, h, kvH, sg.positions, program.rope(), tempKvOrAny(sg), 0, none);
                }
                int cols = program.qkvCols();
                device.toHost(qkvN, n, qkvHost, 0);
                long s0 = System.nanoTime();
                device.synchronize();
                long a0 = System.nanoTime();
                deviceWaitNanos += a0 - s0;
                for (int r = 0; r < n; r++) {
                    long row = (long) r * cols * 4;
                    store(qkvHost, row + 4L * qDim, cache.keys(hl), cache.offset(seqOfRow[r], sg.positions[r]), cache);
                    store(qkvHost, row + 4L * (qDim + kvDim), cache.values(hl), cache.offset(seqOfRow[r], sg.positions[r]), cache);
                }
                HostAttention.run(pool, qkvHost, 0, cols, cache, hl, seqOfRow, sg.positions, h, kvH, hd, scale, attHost);
                hostAttentionNanos += System.nanoTime() - a0;
                device.fromHost(attHost, 0, attN, n);
            }

            KvStorage tempKvOrAny(Segment sg) { return tempKv != null ? tempKv : deviceCache[sg.batch]; }

            /** One row of kvDim f32 values into the cache, in its format (bf16: round to nearest even; GQ4: compressed). */
            void store(MemorySegment src, long srcOff, MemorySegment dst, long dstOff, HostKvCache cache) {
                switch (cache.format()) {
                    case F32 -> {
                        MemorySegment.copy(src, srcOff, dst, dstOff, 4L * kvDim);
                        return;
                    }
                    case GQ4 -> {
                        dev.tandem.core.quant.GroupQuant4.quantize(src.asSlice(srcOff, 4L * kvDim), DType.F32,
                                HostKvCache.slotLayout(1, config.kvHeads(), config.headDim()), dst, dstOff,
                                dev.tandem.core.quant.GroupQuant4.KV_RANGE);
                        return;
                    }
                    default -> { }
                }
                MemorySegment.copy(src, ValueLayout.JAVA_FLOAT_UNALIGNED, srcOff, kvRow, 0, kvDim);
                Codec.encode(DType.BF16, kvRow, 0, kvDim, dst, dstOff);
            }

            void sample(Segment sg, Activation xs, boolean prefill) {
                int rows = sg.seqs.length;
                Activation last = gathered.rows(rows), nm = norm.rows(rows), lg = logits.rows(rows);
                b.gatherRows(xs, sg.logitRows, last);
                program.logits(b, weights.globals(), last, nm, lg);
                boolean greedy = true;
                for (int s : sg.seqs) greedy &= requests.get(global(sg.batch, s)).sampling().argmaxOnly();
                int[] next = new int[rows];
                if (greedy) {
                    b.argmax(lg, next);
                } else {
                    float[] row = new float[config.vocabSize()];
                    for (int i = 0; i < rows; i++) {
                        int g = global(sg.batch, sg.seqs[i]);
                        b.read(lg, i, row);
                        next[i] = samplers[g].sample(row, sequences[g], length[g]);
                    }
                }
                for (int i = 0; i < rows; i++) {
                    int g = global(sg.batch, sg.seqs[i]);
                    sequences[g][length[g]++] = next[i];
                    if (next[i] == eos || length[g] - requests.get(g).prompt().length >= requests.get(g).maxNewTokens()) finished[g] = true;
                }
            }
        }
    }

    private Buffers buffers;

    @Override
    public void close() {
        weights.close();
        if (ownPool) pool.close();
    }
}
