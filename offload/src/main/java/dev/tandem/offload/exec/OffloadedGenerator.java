package dev.tandem.offload.exec;

import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.offload.policy.OffloadPolicy;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

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
 *
 * <p>With several devices the layers are split into pipeline stages ({@link PipelineStage}), several blocks in flight.
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
                        double weightWaitSeconds, double hostAttentionSeconds, double deviceWaitSeconds, List<StageStats> stages) {
        public double seconds() { return prefillSeconds + decodeSeconds; }

        /** FlexGen's figure: generated tokens over the whole run (prefill included). */
        public double tokensPerSecond() { return generatedTokens / seconds(); }
    }

    /** Progress callback: sequences finished so far out of all. */
    public interface Progress {
        void update(int done, int total);
    }

    /** Where one pipeline stage's time went: running passes (busy) or waiting for the previous stage (idle). */
    public record StageStats(String device, int firstLayer, int layers, double busySeconds, double idleSeconds, double weightWaitSeconds,
                             double hostAttentionSeconds, double deviceWaitSeconds) {}

    private final ModelConfig config;
    private final OffloadPolicy policy;
    private final List<PipelineStage> stages = new ArrayList<>();
    private final DiskStore disk;
    private final int maxChunkRows, eos;
    private Stats last;

    /**
     * @param disk         the disk tier, or null when the policy keeps nothing on disk
     * @param maxChunkRows most prompt tokens one prefill op covers (bounds device activation memory)
     * @param eos          end-of-sequence token id, or -1 to always generate max tokens
     */
    public OffloadedGenerator(LayerProgram program, OffloadDevice device, OffloadPolicy policy, DiskStore disk, int maxChunkRows, int eos) {
        this(program, List.of(device), null, policy, disk, maxChunkRows, eos);
    }

    /**
     * Pipeline parallelism over several devices, as FlexGen's multi-GPU mode: stage i runs on {@code devices.get(i)} a
     * contiguous range of layers, with its own weights (the policy applied to its layers, under its device's caps) and KV
     * cache, on a thread of its own. As many blocks as stages are in flight, so that every stage has one to work on: a
     * block's residual stream goes from stage to stage through host memory, the last stage samples, and the block's
     * next token enters the first stage again.
     *
     * @param stageLayers layers per stage (summing to the model's), or null for an even split (earlier stages take the
     *                    remainder)
     * @param disk        the disk tier all stages share, or null when the policy keeps nothing on disk
     */
    public OffloadedGenerator(LayerProgram program, List<OffloadDevice> devices, int[] stageLayers, OffloadPolicy policy, DiskStore disk,
                              int maxChunkRows, int eos) {
        this.config = program.config();
        this.policy = policy;
        this.disk = disk;
        this.maxChunkRows = Math.max(1, maxChunkRows);
        this.eos = eos;
        if (policy.cacheDiskPercent() > 1e-9 || policy.actDiskPercent() > 1e-9) {
            throw new OffloadException("the KV cache and activations can live on the GPU or the CPU, not on disk (policy " + policy.format() + ")");
        }
        int[] split = stageLayers != null ? stageLayers.clone() : evenSplit(config.layers(), devices.size());
        if (split.length != devices.size() || Arrays.stream(split).sum() != config.layers() || Arrays.stream(split).min().orElse(0) < 1) {
            throw new OffloadException("a pipeline of " + devices.size() + " stages needs at least one layer each, " + config.layers()
                    + " in all; got " + Arrays.toString(split));
        }
        int hostThreads = Math.max(1, Runtime.getRuntime().availableProcessors() / devices.size());
        try {
            for (int i = 0, first = 0; i < devices.size(); first += split[i++]) {
                stages.add(new PipelineStage(program, first, split[i], devices.get(i), policy, disk, hostThreads));
            }
        } catch (RuntimeException e) {
            stages.forEach(PipelineStage::close);
            throw e;
        }
    }

    /** {@code layers} over {@code stages}: equal shares, the first {@code layers % stages} one layer more. */
    static int[] evenSplit(int layers, int stages) {
        int[] out = new int[stages];
        for (int i = 0; i < stages; i++) out[i] = layers / stages + (i < layers % stages ? 1 : 0);
        return out;
    }

    public Stats lastStats() { return last; }

    /** Generated tokens per request, in request order. */
    public List<int[]> generate(List<Request> requests, Progress progress) {
        List<int[]> out = new ArrayList<>();
        int block = policy.blockSize(), inFlight = stages.size();
        PipelineStage.Shape shape = requests.isEmpty() ? null : PipelineStage.Shape.of(requests, policy, config, maxChunkRows, inFlight);
        for (PipelineStage s : stages) {
            if (shape != null) s.prepare(shape);
            s.resetTiming();
        }
        long promptTokens = 0, generated = 0;
        double[] seconds = new double[2];
        for (int i = 0; i < requests.size(); i += block * inFlight) {
            List<MicroBatch> blocks = new ArrayList<>();
            for (int j = i; j < Math.min(requests.size(), i + block * inFlight); j += block) {
                blocks.add(new MicroBatch(requests.subList(j, Math.min(requests.size(), j + block)), blocks.size(), config,
                        policy.gpuBatchSize(), shape.capacity(), maxChunkRows, eos));
            }
            runPipeline(blocks, seconds);
            for (MicroBatch mb : blocks) {
                List<int[]> o = mb.outputs();
                out.addAll(o);
                promptTokens += mb.promptTokens();
                for (int[] t : o) generated += t.length;
            }
            if (progress != null) progress.update(out.size(), requests.size());
        }
        long[] tiers = new long[3];
        long hostPeak = 0, deviceBytes = 0;
        double weightWait = 0, hostAttention = 0, deviceWait = 0;
        List<StageStats> perStage = new ArrayList<>();
        for (PipelineStage s : stages) {
            long[] t = s.weights().bytesByTier();
            for (int k = 0; k < 3; k++) tiers[k] += t[k];
            hostPeak += s.device().host().peak();
            deviceBytes += s.device().deviceBytes();
            PipelineStage.Timing tm = s.timing();
            weightWait += tm.weightWaitSeconds();
            hostAttention += tm.hostAttentionSeconds();
            deviceWait += tm.deviceWaitSeconds();
            perStage.add(new StageStats(s.device().backend().name(), s.first, s.layers, tm.busySeconds(), tm.idleSeconds(),
                    tm.weightWaitSeconds(), tm.hostAttentionSeconds(), tm.deviceWaitSeconds()));
        }
        last = new Stats(requests.size(), promptTokens, generated, seconds[0], seconds[1], tiers, hostPeak, deviceBytes,
                disk == null ? 0 : disk.bytesRead(), weightWait, hostAttention, deviceWait, List.copyOf(perStage));
        return out;
    }

    /** The end of a stage's input: the run is over (or failed). */
    private static final MicroBatch.Pass STOP = new MicroBatch.Pass(null, List.of(), false);

    /**
     * Runs blocks to completion through the stages: stage 0 on the calling thread, each other stage on a thread of its
     * own, passes handed on through queues. Adds the prefill time (until every block has its first token) and the decode
     * time to {@code seconds}.
     */
    private void runPipeline(List<MicroBatch> blocks, double[] seconds) {
        int n = stages.size();
        List<BlockingQueue<MicroBatch.Pass>> inbox = new ArrayList<>();
        for (int s = 0; s < n; s++) inbox.add(new LinkedBlockingQueue<>());
        AtomicInteger open = new AtomicInteger(blocks.size()), prefilled = new AtomicInteger();
        AtomicLong prefillEnd = new AtomicLong();
        AtomicReference<Throwable> error = new AtomicReference<>();
        long t0 = System.nanoTime();
        for (MicroBatch mb : blocks) inbox.get(0).add(mb.prefill());
        Runnable stop = () -> inbox.forEach(q -> q.add(STOP));
        java.util.function.IntConsumer loop = s -> {
            PipelineStage stage = stages.get(s);
            try {
                while (true) {
                    long w = System.nanoTime();
                    MicroBatch.Pass pass = inbox.get(s).take();
                    stage.idle(System.nanoTime() - w);
                    if (pass == STOP || error.get() != null) return;
                    stage.run(pass, s == 0 ? null : stages.get(s - 1).handoff(pass.batch().slot()));
                    if (s + 1 < n) {
                        inbox.get(s + 1).add(pass);
                        continue;
                    }
                    if (pass.prefill() && prefilled.incrementAndGet() == blocks.size()) prefillEnd.set(System.nanoTime());
                    MicroBatch.Pass next = pass.batch().next();
                    if (next != null) inbox.get(0).add(next);
                    else if (open.decrementAndGet() == 0) stop.run();
                }
            } catch (Throwable e) {
                error.compareAndSet(null, e);
                stop.run();
            }
        };
        List<Thread> threads = new ArrayList<>();
        for (int s = 1; s < n; s++) {
            int stage = s;
            Thread t = new Thread(() -> loop.accept(stage), "tandem-offload-stage-" + s);
            t.setDaemon(true);
            t.start();
            threads.add(t);
        }
        loop.accept(0);
        for (Thread t : threads) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new OffloadException("interrupted while waiting for pipeline stages", e);
            }
        }
        Throwable e = error.get();
        if (e instanceof RuntimeException r) throw r;
        if (e instanceof Error err) throw err;
        if (e != null) throw new OffloadException("pipeline stage failed: " + e, e);
        long end = System.nanoTime();
        seconds[0] += (prefillEnd.get() - t0) / 1e9;
        seconds[1] += (end - prefillEnd.get()) / 1e9;
    }

    @Override
    public void close() {
        stages.forEach(PipelineStage::close);
    }
}
