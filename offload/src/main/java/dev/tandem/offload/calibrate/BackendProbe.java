package dev.tandem.offload.calibrate;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.AttentionBatch;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.Weight;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;
import dev.tandem.offload.exec.LayerProgram;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * Matmul and attention rates of a {@link Backend} (the CPU backend or the CUDA one: the ops the offloading executor
 * runs), in FLOP/s counted as FlexGen's cost model counts them: 2 per weight per row for a matmul, 4 s^2 h1 for a
 * prompt's attention, 4 ctx h1 per sequence for a decode step's. Each figure is the best of several timed runs; reading
 * one output row back makes the run complete on a GPU.
 */
public final class BackendProbe {
    private final Backend backend;
    private final double seconds;

    /** @param seconds rough time each figure may take */
    public BackendProbe(Backend backend, double seconds) {
        this.backend = backend;
        this.seconds = seconds;
    }

    /** FLOP/s of out[n, rows] = x[n, cols] W^T with a bf16 weight. */
    public double matmul(int n, int rows, int cols) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate((long) rows * cols * 2, 64);
            for (long i = 0; i < (long) rows * cols; i++) data.setAtIndex(ValueLayout.JAVA_SHORT, i, (short) (0x3C00 + (i * 7 & 63)));
            Weight w = backend.upload(new Tensor("probe.weight", DType.BF16, new long[]{rows, cols}, data));
            Activation x = backend.allocate(n, cols), out = backend.allocate(n, rows);
            return 2.0 * n * rows * cols / bestSeconds(() -> backend.matmul(x, w, out), out);
        }
    }

    /** FLOP/s of decode attention: {@code seqs} sequences of one new token over {@code ctx} cached tokens each. */
    public double decodeAttention(int seqs, int ctx, int heads, int kvHeads, int headDim) {
        return attention(seqs, 1, ctx, heads, kvHeads, headDim);
    }

    /** FLOP/s of prefill attention: one prompt of {@code len} tokens. */
    public double prefillAttention(int len, int heads, int kvHeads, int headDim) {
        return attention(1, len, len, heads, kvHeads, headDim);
    }

    private double attention(int seqs, int qLen, int ctx, int heads, int kvHeads, int headDim) {
        int bs = KvLayout.DEFAULT_BLOCK_SIZE, blocksPerSeq = Math.ceilDiv(ctx, bs);
        KvStorage kv = backend.allocateKv(new KvLayout(1, seqs * blocksPerSeq, bs, kvHeads, headDim));
        List<AttentionBatch.Seq> list = new ArrayList<>();
        int[] positions = new int[seqs * qLen];
        for (int s = 0; s < seqs; s++) {
            int[] table = new int[blocksPerSeq];
            for (int b = 0; b < blocksPerSeq; b++) table[b] = s * blocksPerSeq + b;
            list.add(new AttentionBatch.Seq(s * qLen, qLen, ctx, table));
            for (int t = 0; t < qLen; t++) positions[s * qLen + t] = ctx - qLen + t;
        }
        AttentionBatch batch = new AttentionBatch(list, heads, kvHeads, headDim, (float) (1 / Math.sqrt(headDim)));
        Activation q = backend.allocate(seqs * qLen, heads * headDim), out = backend.allocate(seqs * qLen, heads * headDim);
        backend.beginStep(null, positions, null, batch, blocksPerSeq);
        // FlexGen's count: 4 ctx h1 per query token over its context (2 for q k^T, 2 for p v); a prompt's s^2.
        double flops = 4.0 * seqs * qLen * ctx * heads * headDim;
        return flops / bestSeconds(() -> backend.attention(q, kv, 0, batch, out), out);
    }

    /**
     * FLOP/s of a whole layer's ops outside attention as the offloading executor issues them ({@link LayerProgram}'s
     * {@code beforeAttention} and {@code afterAttention}: the matmuls with their norms, biases, activation function,
     * residual adds and precision conversions, one kernel launch each) on {@code rows} rows with the layer's weights in
     * device memory, counted as the cost model counts a layer's matmuls: 2 FLOP per weight per row. The cost model's
     * matmul rates are this (FlexGen's are fitted to whole runs, not to a bare GEMM, for the same reason).
     *
     * @param stacked whether {@code program} was made with q|k|v stacked (the CUDA path's; the CPU backend's is not)
     */
    public double layer(LayerProgram program, int rows, boolean stacked) {
        var config = program.config();
        try (Arena arena = Arena.ofShared()) {
            List<Tensor> matrices = program.matrices(0, arena), vectors = program.vectors(0, arena);
            Weight[] m = matrices.stream().map(backend::upload).toArray(Weight[]::new);
            Weight[] v = vectors.stream().map(backend::upload).toArray(Weight[]::new);
            long params = 0;
            for (Tensor t : matrices) params += (long) t.rows() * t.cols();
            int qDim = config.qDim(), kvDim = config.kvDim();
            Activation x = backend.allocate(rows, config.dim()), xb = backend.allocate(rows, config.dim());
            Activation qkv = stacked ? backend.allocate(rows, program.qkvCols()) : null;
            Activation q = stacked ? qkv.columns(0, qDim) : backend.allocate(rows, qDim);
            Activation k = stacked ? qkv.columns(qDim, kvDim) : backend.allocate(rows, kvDim);
            Activation val = stacked ? qkv.columns(qDim + kvDim, kvDim) : backend.allocate(rows, kvDim);
            Activation att = backend.allocate(rows, qDim), proj = backend.allocate(rows, config.dim());
            Activation ffn = backend.allocate(rows, program.ffnCols()), ffn2 = backend.allocate(rows, config.hiddenDim());
            int[] positions = new int[rows];
            for (int i = 0; i < rows; i++) positions[i] = i % config.contextLength();
            backend.beginStep(null, positions, null, null, 0);
            double seconds = bestSeconds(() -> {
                program.beforeAttention(backend, m, v, x, xb, qkv, q, k, val);
                program.afterAttention(backend, m, v, att, x, xb, proj, ffn, ffn2);
            }, x);
            return 2.0 * params * rows / seconds;
        }
    }

    /**
     * Best seconds per run of {@code op}. Warm-up first, until the time per run stops improving (the CPU backend's
     * Vector API code is two orders of magnitude slower until C2 has compiled it, which takes long on a loaded
     * machine): at least the budget, at most ten times it. Then the best of timed batches over one more budget. The
     * loops live in {@link #timeRuns}, called afresh for every batch: a loop compiled on-stack while the op's profile
     * was immature otherwise kept running the slow code for the whole measurement.
     */
    private double bestSeconds(Runnable op, Activation out) {
        float[] row = new float[out.cols()];
        long start = System.nanoTime();
        int reps = 1;
        double previous = Double.MAX_VALUE;
        while (true) {
            double perRun = timeRuns(op, reps, out, row);
            if (perRun * reps < 0.05) reps *= 2;
            long spent = System.nanoTime() - start;
            if (spent > 10 * seconds * 1e9 || (spent > seconds * 1e9 && perRun > 0.9 * previous)) break;
            previous = Math.min(previous, perRun);
        }
        double best = Double.MAX_VALUE;
        long end = System.nanoTime() + (long) (seconds * 1e9);
        do {
            double t = timeRuns(op, reps, out, row);
            best = Math.min(best, t);
            if (t * reps < 0.05) reps *= 2;
        } while (System.nanoTime() < end);
        return best;
    }

    /** Seconds per run of {@code reps} runs, reading a row back so that a GPU has finished them. */
    private double timeRuns(Runnable op, int reps, Activation out, float[] row) {
        long t0 = System.nanoTime();
        for (int i = 0; i < reps; i++) op.run();
        backend.read(out, 0, row);
        return (System.nanoTime() - t0) / 1e9 / reps;
    }
}
