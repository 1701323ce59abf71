package dev.tandem.offload.calibrate;

import dev.tandem.core.backend.cpu.CpuThreadPool;
import dev.tandem.offload.exec.HostAttention;
import dev.tandem.offload.exec.HostKvCache;
import dev.tandem.offload.exec.HostMemory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The rate of the offloading executor's CPU attention: what {@code OffloadedGenerator} does for one GPU batch of one
 * layer whose KV cache lives in host memory (FlexGen's "attention on the CPU"), timed as the executor times it: each
 * row's new K and V stored into the {@link HostKvCache} in its format, then {@link HostAttention} over the batch's
 * sequences, on the thread pool the executor uses. The cache is sized like a run's (several layers of batch x
 * (prompt + generation) slots, more bytes than the CPU's caches hold), and successive calls walk its layers in turn so
 * that every call reads its layer from memory, as a decode step does.
 *
 * <p>Figures are in the cost model's count: 4 ctx kvd FLOP per query row (kvd the K/V width, so the figure is a cache
 * read rate in disguise, whatever the number of query heads per KV head).
 */
public final class HostAttentionProbe {
    /**
     * @param flops     FLOP/s in the cost model's count
     * @param cacheBytes bytes of the probe's cache (keys and values, all its layers)
     * @param layers    layers walked in turn
     */
    public record Rate(double flops, long cacheBytes, int layers) {}

    private final CpuThreadPool pool;
    private final double seconds;

    /** @param seconds rough time budget of one figure (warm-up included) */
    public HostAttentionProbe(CpuThreadPool pool, double seconds) {
        this.pool = pool;
        this.seconds = seconds;
    }

    /**
     * One decode step's attention for {@code seqs} sequences whose queries sit at position {@code ctx - 1} (a cache of
     * {@code capacity} >= ctx slots per sequence), over at least {@code minCacheBytes} of cache.
     */
    public Rate measure(HostKvCache.Format format, int seqs, int ctx, int capacity, int heads, int kvHeads, int headDim, long minCacheBytes) {
        if (ctx < 1 || capacity < ctx || seqs < 1) throw new IllegalArgumentException("need 1 <= ctx <= capacity and seqs >= 1, got ctx "
                + ctx + ", capacity " + capacity + ", seqs " + seqs);
        int kvDim = kvHeads * headDim, qDim = heads * headDim, qkvCols = qDim + 2 * kvDim;
        long layerBytes = 2L * seqs * capacity * HostKvCache.slotBytes(kvHeads, headDim, format);
        int layers = (int) Math.clamp(Math.ceilDiv(minCacheBytes, layerBytes), 1, 4096);
        try (HostMemory mem = HostMemory.plain(Long.MAX_VALUE); Arena arena = Arena.ofShared()) {  // shared: the pool reads q
            HostKvCache cache = new HostKvCache(mem, layers, seqs, capacity, kvHeads, headDim, format);
            // q|k|v rows as the executor receives them from the GPU: f32, q at 0, k at qDim, v at qDim + kvDim.
            MemorySegment qkv = arena.allocate(4L * seqs * qkvCols, 64), out = arena.allocate(4L * seqs * qDim, 64);
            for (long i = 0; i < (long) seqs * qkvCols; i++) qkv.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) Math.sin(i * 0.37) * 0.5f);
            fill(cache, layers, qkv, qDim);
            int[] sequences = new int[seqs], positions = new int[seqs];
            for (int r = 0; r < seqs; r++) {
                sequences[r] = r;
                positions[r] = ctx - 1;
            }
            float scale = (float) (1 / Math.sqrt(headDim));
            float[] row = new float[kvDim];
            int[] next = {0};
            Runnable call = () -> {
                int l = next[0]++ % layers;
                for (int r = 0; r < seqs; r++) {
                    long at = cache.offset(r, ctx - 1), src = 4L * r * qkvCols;
                    cache.store(qkv, src + 4L * qDim, cache.keys(l), at, row);
                    cache.store(qkv, src + 4L * (qDim + kvDim), cache.values(l), at, row);
                }
                HostAttention.run(pool, qkv, 0, qkvCols, cache, l, sequences, positions, heads, kvHeads, headDim, scale, out);
            };
            double flops = 4.0 * ctx * kvDim * seqs;
            return new Rate(flops / meanSeconds(call, layers), 2 * layers * cache.layerBytes(), layers);
        }
    }

    /**
     * Fills every slot with realistic values: one slot's K and V (from the q|k|v rows, stored in the cache's format,
     * so that a GQ4 slot has sane scales) copied everywhere, by doubling copies within each layer's segment.
     */
    private static void fill(HostKvCache cache, int layers, MemorySegment qkv, int qDim) {
        long slot = cache.slotBytes(), total = cache.layerBytes();
        float[] row = new float[cache.kvDim()];
        for (int l = 0; l < layers; l++) {
            for (int kv = 0; kv < 2; kv++) {
                MemorySegment seg = kv == 0 ? cache.keys(l) : cache.values(l);
                cache.store(qkv, 4L * (qDim + kv * cache.kvDim()), seg, 0, row);
                for (long have = slot; have < total; have *= 2) MemorySegment.copy(seg, 0, seg, have, Math.min(have, total - have));
            }
        }
    }

    /**
     * Mean seconds per call in steady state: warm-up (C2 compiles the Vector API code) until a pass over the layers
     * stops getting faster, at least a budget's worth and at most ten; then whole passes over the layers for one more
     * budget, the mean of the best pass's calls (a pass is several calls, so one descheduled thread on a busy machine
     * does not set the figure, and every layer is read once per pass).
     */
    private double meanSeconds(Runnable call, int layers) {
        int perPass = Math.max(layers, 2);
        long start = System.nanoTime();
        double previous = Double.MAX_VALUE;
        while (true) {
            double t = pass(call, perPass);
            long spent = System.nanoTime() - start;
            if (spent > 10 * seconds * 1e9 || (spent > seconds * 1e9 && t > 0.97 * previous)) break;
            previous = Math.min(previous, t);
        }
        double best = Double.MAX_VALUE;
        long end = System.nanoTime() + (long) (seconds * 1e9);
        do best = Math.min(best, pass(call, perPass)); while (System.nanoTime() < end);
        return best;
    }

    private static double pass(Runnable call, int calls) {
        long t0 = System.nanoTime();
        for (int i = 0; i < calls; i++) call.run();
        return (System.nanoTime() - t0) / 1e9 / calls;
    }
}
