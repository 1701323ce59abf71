package dev.tandem.offload.exec;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.Weight;
import dev.tandem.core.backend.cpu.CpuActivation;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.backend.cpu.CpuThreadPool;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.offload.exec.MicroBatch.Segment;
import dev.tandem.offload.policy.OffloadPolicy;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One device's share of an offloaded run: a contiguous range of the model's layers, its own weights placed by the policy
 * (the policy's percentages applied to this range, under this device's caps), its own KV cache for those layers and its
 * own activation buffers. The first stage embeds the tokens and the last one applies the output head and samples; in
 * between, a block's residual stream crosses host memory (rows x dim floats) from one stage to the next. Within a stage
 * the schedule is FlexGen's zig-zag: for each of its layers, the weights once and every GPU batch of the block through
 * them. A run on one device is one stage holding every layer.
 */
final class PipelineStage implements AutoCloseable {
    /** Sizes of a run's buffers, from its requests: every stage allocates for the same shape. */
    record Shape(int gbs, int batches, int capacity, int rows, int handoffRows, int slots) {
        static Shape of(List<OffloadedGenerator.Request> all, OffloadPolicy policy, ModelConfig config, int maxChunkRows, int slots) {
            int gbs = Math.min(policy.gpuBatchSize(), all.size()), batches = Math.min(policy.numGpuBatches(), Math.ceilDiv(all.size(), gbs));
            int longest = 0, maxPrompt = 0;
            for (OffloadedGenerator.Request r : all) {
                longest = Math.max(longest, r.prompt().length + r.maxNewTokens());
                maxPrompt = Math.max(maxPrompt, r.prompt().length);
            }
            if (longest > config.contextLength()) {
                throw new OffloadException("a prompt plus max_tokens of " + longest + " tokens exceeds the model's context of " + config.contextLength());
            }
            int bs = KvLayout.DEFAULT_BLOCK_SIZE;
            int rows = Math.max(Math.max(gbs, maxPrompt), Math.min(maxChunkRows, gbs * maxPrompt));
            return new Shape(gbs, batches, Math.ceilDiv(longest, bs) * bs, rows, gbs * batches * maxPrompt,
                    Math.min(slots, Math.ceilDiv(all.size(), policy.blockSize())));
        }

        boolean covers(Shape o) {
            return gbs >= o.gbs && batches >= o.batches && capacity >= o.capacity && rows >= o.rows && handoffRows >= o.handoffRows
                    && slots >= o.slots;
        }
    }

    /** Where a stage's time went over a run. */
    record Timing(double busySeconds, double idleSeconds, double weightWaitSeconds, double hostAttentionSeconds, double deviceWaitSeconds) {}

    /** Whether a segment of consecutive same-length sequences moves its host cache in one transfer (tests turn it off to compare). */
    static volatile boolean batchKvTransfers = true;

    final int first, layers;
    private final boolean embeds, head;
    private final LayerProgram program;
    private final ModelConfig config;
    private final OffloadDevice device;
    private final Backend b;
    private final OffloadPolicy policy;
    private final OffloadedWeights weights;
    private final CpuThreadPool pool;
    private final boolean ownPool;
    private final float scale;
    private long layerCounter;
    // Where the stage's thread spends its time: running passes (busy) or waiting for one (idle); within busy, waiting for
    // weights (disk reads), on CPU attention, for the device (step ends, q/k/v copies).
    private long busyNanos, idleNanos, weightWaitNanos, hostAttentionNanos, deviceWaitNanos;
    private Buffers buffers;

    /**
     * @param first       the first of this stage's layers
     * @param layers      how many layers it runs
     * @param hostThreads threads for CPU attention on a device path (the CPU path uses its backend's pool)
     */
    PipelineStage(LayerProgram program, int first, int layers, OffloadDevice device, OffloadPolicy policy, DiskStore disk, int hostThreads) {
        this.program = program;
        this.config = program.config();
        this.first = first;
        this.layers = layers;
        this.embeds = first == 0;
        this.head = first + layers == config.layers();
        this.device = device;
        this.b = device.backend();
        this.policy = policy;
        if (b instanceof CpuBackend cpu) {
            pool = cpu.pool();
            ownPool = false;
        } else {
            pool = new CpuThreadPool(Math.max(1, hostThreads), CpuThreadPool.DEFAULT_SPIN_NANOS);
            ownPool = true;
        }
        this.scale = (float) (1.0 / Math.sqrt(config.headDim()));
        device.compressWeights(policy.compressWeight());
        this.weights = new OffloadedWeights(device, program, first, layers, embeds, head, policy, disk);
    }

    OffloadDevice device() { return device; }

    OffloadedWeights weights() { return weights; }

    Timing timing() {
        return new Timing(busyNanos / 1e9, idleNanos / 1e9, weightWaitNanos / 1e9, hostAttentionNanos / 1e9, deviceWaitNanos / 1e9);
    }

    void idle(long nanos) { idleNanos += nanos; }

    /** Starts a run's timing afresh. */
    void resetTiming() { busyNanos = idleNanos = weightWaitNanos = hostAttentionNanos = deviceWaitNanos = 0; }

    /** Allocates the run's buffers unless those of an earlier run cover its shape. */
    void prepare(Shape shape) {
        if (buffers == null || !buffers.shape.covers(shape)) buffers = new Buffers(shape);
    }

    /** Where this stage leaves a block's residual stream for the next stage (f32 rows, segment after segment). */
    MemorySegment handoff(int slot) { return buffers.handoff[slot]; }

    /**
     * One forward pass of a block through this stage's layers; {@code in} holds the residual stream from the previous
     * stage (null on the first). Returns once the device is done, so the next stage may read the hand-off buffer.
     */
    void run(MicroBatch.Pass pass, MemorySegment in) {
        long t0 = System.nanoTime();
        device.bindThread();
        buffers.new Run(pass.batch(), pass.segments(), pass.prefill(), in).run();
        busyNanos += System.nanoTime() - t0;
    }

    /**
     * Device and host buffers of a run, allocated once for its largest shape (device memory is not returned to the
     * backend until it closes, so blocks reuse them). KV caches are per slot (block in flight) and GPU batch.
     */
    private final class Buffers {
        final Shape shape;
        final int capacity, gpuCacheLayers;
        final HostKvCache[][] hostCache;
        final KvStorage[][] deviceCache;
        final KvStorage tempKv;
        final Activation x, xb, qkv, q, k, v, att, proj, ffn, ffn2, gathered, norm, logits;
        final Activation[] decodeHidden;
        final List<Activation> segmentHidden = new ArrayList<>();
        final List<MemorySegment> segmentHiddenHost = new ArrayList<>();
        final MemorySegment qkvHost, attHost;
        final MemorySegment[] handoff;

        Buffers(Shape shape) {
            this.shape = shape;
            int gbs = shape.gbs(), batches = shape.batches(), rows = shape.rows();
            int bs = KvLayout.DEFAULT_BLOCK_SIZE, kvDim = config.kvDim(), qDim = config.qDim();
            capacity = shape.capacity();
            gpuCacheLayers = device.hostOnly() ? 0 : (int) Math.round(layers * policy.cacheGpuPercent() / 100.0);
            HostKvCache.Format format = HostKvCache.Format.of(device.kvElementBytes(), policy.compressCache());
            hostCache = new HostKvCache[shape.slots()][batches];
            deviceCache = new KvStorage[shape.slots()][batches];
            for (int m = 0; m < shape.slots(); m++) {
                for (int j = 0; j < batches; j++) {
                    if (gpuCacheLayers < layers) {
                        hostCache[m][j] = new HostKvCache(device.host(), layers - gpuCacheLayers, gbs, capacity, config.kvHeads(),
                                config.headDim(), format);
                    }
                    if (gpuCacheLayers > 0) {
                        deviceCache[m][j] = b.allocateKv(new KvLayout(gpuCacheLayers, gbs * capacity / bs, bs, config.kvHeads(), config.headDim()));
                    }
                }
            }
            tempKv = device.hostOnly() || gpuCacheLayers == layers ? null
                    : b.allocateKv(new KvLayout(1, gbs * capacity / bs, bs, config.kvHeads(), config.headDim()));
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
            gathered = head ? b.allocate(gbs, config.dim()) : null;
            norm = head ? b.allocate(gbs, config.dim()) : null;
            logits = head ? b.allocate(gbs, config.vocabSize()) : null;
            decodeHidden = new Activation[batches];
            for (int j = 0; j < batches; j++) decodeHidden[j] = batches == 1 ? x : b.allocate(gbs, config.dim());
            qkvHost = device.hostOnly() ? null : device.host().allocate(4L * gbs * program.qkvCols());
            attHost = device.hostOnly() ? null : device.host().allocate(4L * gbs * qDim);
            handoff = new MemorySegment[shape.slots()];
            if (!head) for (int m = 0; m < shape.slots(); m++) handoff[m] = device.host().allocate(4L * shape.handoffRows() * config.dim());
            if (device instanceof CudaOffloadDevice c) c.checkCap();
        }

        /** The residual stream of prefill segment i: on the device when the policy keeps activations there. */
        void hidden(int i, boolean onlyOne, Activation[] hid, MemorySegment[] hidHost) {
            if (onlyOne) {
                hid[i] = x;
            } else if (policy.actGpuPercent() >= 100) {
                while (segmentHidden.size() <= i) segmentHidden.add(b.allocate(shape.rows(), config.dim()));
                hid[i] = segmentHidden.get(i);
                if (device instanceof CudaOffloadDevice c) c.checkCap();
            } else {
                while (segmentHiddenHost.size() <= i) segmentHiddenHost.add(device.host().allocate(4L * shape.rows() * config.dim()));
                hidHost[i] = segmentHiddenHost.get(i);
            }
        }

        /** One pass of a block through this stage, over the run's buffers (this Buffers' fields). */
        private final class Run {
            final MicroBatch mb;
            final List<Segment> segs;
            final boolean prefill;
            final MemorySegment in, out;
            final HostKvCache[] hostCaches;
            final KvStorage[] deviceCaches;
            final int kvDim = config.kvDim(), qDim = config.qDim();
            /** One K or V row on its way into a bf16 host cache (this stage's thread's only). */
            final float[] kvRow = new float[kvDim];

            Run(MicroBatch mb, List<Segment> segs, boolean prefill, MemorySegment in) {
                this.mb = mb;
                this.segs = segs;
                this.prefill = prefill;
                this.in = in;
                this.out = handoff[mb.slot()];
                this.hostCaches = hostCache[mb.slot()];
                this.deviceCaches = deviceCache[mb.slot()];
            }

            /** Every segment, layer by layer (the zig-zag order); the last stage then samples one token per sequence. */
            void run() {
                int n = segs.size();
                Activation[] hid = new Activation[n];
                MemorySegment[] hidHost = new MemorySegment[n];
                long[] at = new long[n]; // each segment's offset in the hand-off buffers
                for (int i = 0; i < n; i++) {
                    Segment sg = segs.get(i);
                    if (prefill) hidden(i, n == 1, hid, hidHost);
                    else hid[i] = decodeHidden[sg.batch];
                    if (i + 1 < n) at[i + 1] = at[i] + 4L * sg.rows * config.dim();
                }
                long w0 = System.nanoTime();
                if (layerCounter == 0) weights.prefetch(0);
                weightWaitNanos += System.nanoTime() - w0;
                for (int l = 0; l < layers; l++) {
                    long c = layerCounter++;
                    long w1 = System.nanoTime();
                    Weight[] m = weights.acquire(c);
                    weights.prefetch(c + 1);
                    weightWaitNanos += System.nanoTime() - w1;
                    Weight[] vec = weights.vectors(l);
                    for (int i = 0; i < n; i++) {
                        Segment sg = segs.get(i);
                        Activation xs = hid[i] != null ? hid[i].rows(sg.rows) : x.rows(sg.rows);
                        if (l == 0) {
                            b.beginStep(sg.tokens, sg.positions, sg.slots, sg.ab, capacity / KvLayout.DEFAULT_BLOCK_SIZE);
                            if (embeds) program.embed(b, weights.globals(), sg.tokens, sg.positions, xs);
                            else device.fromHost(in, at[i], xs, sg.rows);
                        } else if (hidHost[i] != null) {
                            device.fromHost(hidHost[i], 0, xs, sg.rows);
                        }
                        layer(sg, l, m, vec, xs);
                        if (l + 1 < layers) {
                            if (hidHost[i] != null) device.toHost(xs, sg.rows, hidHost[i], 0);
                        } else if (head) {
                            sample(sg, xs);
                        } else {
                            device.toHost(xs, sg.rows, out, at[i]);
                        }
                    }
                    weights.release(c);
                }
                long s0 = System.nanoTime();
                device.synchronize();
                deviceWaitNanos += System.nanoTime() - s0;
            }

            void layer(Segment sg, int l, Weight[] m, Weight[] vec, Activation xs) {
                int n = sg.rows;
                Activation xbN = xb.rows(n), qkvN = qkv == null ? null : qkv.rows(n), qN = q.rows(n), kN = k.rows(n), vN = v.rows(n);
                Activation attN = att.rows(n);
                b.beginStep(sg.tokens, sg.positions, sg.slots, sg.ab, capacity / KvLayout.DEFAULT_BLOCK_SIZE);
                program.beforeAttention(b, m, vec, xs, xbN, qkvN, qN, kN, vN);
                if (l < gpuCacheLayers) {
                    writeKv(qN, kN, vN, deviceCaches[sg.batch], l, sg.positions, sg.slots);
                    b.attention(qN, deviceCaches[sg.batch], l, sg.ab, attN);
                } else if (!device.hostOnly() && (prefill || !policy.cpuCacheCompute())) {
                    deviceAttention(sg, l - gpuCacheLayers, qN, kN, vN, attN);
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
            void deviceAttention(Segment sg, int hl, Activation qN, Activation kN, Activation vN, Activation attN) {
                HostKvCache cache = hostCaches[sg.batch];
                // A segment of consecutive sequences of one length (FlexGen's batch jobs: every prompt padded to one
                // length) moves in one strided transfer each way instead of one per sequence.
                int first = sg.seqs[0], n = sg.seqs.length, len0 = mb.length(sg.batch, first);
                boolean together = batchKvTransfers;
                for (int i = 1; i < n && together; i++) together = sg.seqs[i] == first + i && mb.length(sg.batch, sg.seqs[i]) == len0;
                if (!prefill) {
                    if (together) {
                        device.kvFromHost(cache, hl, first, n, len0 - 1, tempKv, 0);
                    } else {
                        for (int s : sg.seqs) device.kvFromHost(cache, hl, s, 1, mb.length(sg.batch, s) - 1, tempKv, 0);
                    }
                }
                writeKv(qN, kN, vN, tempKv, 0, sg.positions, sg.slots);
                // Stored before attention: a compressed cache's new rows are attended as stored (as the CPU path
                // attends them), not at full precision for one step only.
                if (together) {
                    device.kvToHost(tempKv, 0, first, n, prefill ? 0 : len0 - 1, prefill ? len0 : 1, cache, hl);
                } else {
                    for (int s : sg.seqs) {
                        int len = mb.length(sg.batch, s);
                        device.kvToHost(tempKv, 0, s, 1, prefill ? 0 : len - 1, prefill ? len : 1, cache, hl);
                    }
                }
                b.attention(qN, tempKv, 0, sg.ab, attN);
            }

            /** Attention on the CPU over the host cache: q, k, v come to the host, the result goes back. */
            void hostAttention(Segment sg, int hl, Activation qN, Activation kN, Activation vN, Activation qkvN, Activation attN) {
                HostKvCache cache = hostCaches[sg.batch];
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
                        cache.store(ks, (long) r * kvDim * 4, cache.keys(hl), cache.offset(seqOfRow[r], sg.positions[r]), kvRow);
                        cache.store(vs, (long) r * kvDim * 4, cache.values(hl), cache.offset(seqOfRow[r], sg.positions[r]), kvRow);
                    }
                    HostAttention.run(pool, qs, 0, qDim, cache, hl, seqOfRow, sg.positions, h, kvH, hd, scale, CpuActivation.of(attN).segment());
                    return;
                }
                if (program.rope() != null) {
                    int[] none = new int[n];
                    Arrays.fill(none, -1);
                    b.ropeWriteKv(qN, kN, vN, h, kvH, sg.positions, program.rope(), tempKv != null ? tempKv : deviceCaches[sg.batch], 0, none);
                }
                int cols = program.qkvCols();
                device.toHost(qkvN, n, qkvHost, 0);
                long s0 = System.nanoTime();
                device.synchronize();
                long a0 = System.nanoTime();
                deviceWaitNanos += a0 - s0;
                for (int r = 0; r < n; r++) {
                    long row = (long) r * cols * 4;
                    cache.store(qkvHost, row + 4L * qDim, cache.keys(hl), cache.offset(seqOfRow[r], sg.positions[r]), kvRow);
                    cache.store(qkvHost, row + 4L * (qDim + kvDim), cache.values(hl), cache.offset(seqOfRow[r], sg.positions[r]), kvRow);
                }
                HostAttention.run(pool, qkvHost, 0, cols, cache, hl, seqOfRow, sg.positions, h, kvH, hd, scale, attHost);
                hostAttentionNanos += System.nanoTime() - a0;
                device.fromHost(attHost, 0, attN, n);
            }

            void sample(Segment sg, Activation xs) {
                int rows = sg.seqs.length;
                Activation last = gathered.rows(rows), nm = norm.rows(rows), lg = logits.rows(rows);
                b.gatherRows(xs, sg.logitRows, last);
                program.logits(b, weights.globals(), last, nm, lg);
                int[] next = new int[rows];
                if (mb.greedy(sg)) {
                    b.argmax(lg, next);
                } else {
                    float[] row = new float[config.vocabSize()];
                    for (int i = 0; i < rows; i++) {
                        b.read(lg, i, row);
                        next[i] = mb.sample(sg, i, row);
                    }
                }
                mb.append(sg, next);
            }
        }
    }

    @Override
    public void close() {
        weights.close();
        if (ownPool) pool.close();
    }
}
