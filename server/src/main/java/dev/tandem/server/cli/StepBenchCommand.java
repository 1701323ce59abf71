package dev.tandem.server.cli;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.kv.BlockPool;
import dev.tandem.core.kv.BlockTable;
import dev.tandem.core.model.DecoderModel;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.StepBatch;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * `tandem bench steps`: the engine's two kinds of step, timed on any backend: decode steps of B sequences (one token
 * each, greedy on the backend, as the serving engine runs them) and single prefills of L tokens. Prints ms per step,
 * tokens/s, and the fraction of the hardware ceiling it implies (weight bytes per decode step; FLOPs per prefill).
 */
final class StepBenchCommand {
    static final Map<String, String> VALUED = Args.options(
            "model", "model folder or file",
            "decode-batches", "comma-separated decode batch sizes (default 1,64); empty to skip",
            "prefill", "comma-separated prefill lengths (default 2048); empty to skip",
            "mixed-decodes", "comma-separated decode batch sizes that each prefill length is also timed with, in one step (the mixed steps of chunked prefill); default none",
            "prefill-context", "comma-separated tokens already cached before each timed prefill (default 0): a chunked prompt's later chunks",
            "context", "tokens already in each sequence's cache when decode steps are timed (default 128)",
            "steps", "decode steps timed per batch size (default 64)",
            "r", "prefill repetitions, the median is reported (default 5)",
            BackendOptions.OPTIONS[0], BackendOptions.OPTIONS[1], BackendOptions.OPTIONS[2], BackendOptions.OPTIONS[3],
            BackendOptions.OPTIONS[4], BackendOptions.OPTIONS[5]);
    static final Map<String, String> FLAGS = Args.options("help", "show options");
    /** Untimed decode steps first: past graph recording and the JIT's compilation of the step's host path. */
    private static final int WARM_STEPS = 16;
    private static final String USAGE = "bench steps --model PATH [--device cuda] [--decode-batches 1,64] [--prefill 2048,8192] [--prefill-context 0,4096] [--mixed-decodes 8,32] [--context 128] [--steps 64]";

    int run(String[] argv) {
        Args args = new Args("bench steps", argv, VALUED, FLAGS);
        if (args.flag("help")) return Help.print(USAGE, VALUED, FLAGS);
        int[] batches = args.positiveIntegers("decode-batches", "1,64");
        int[] prefills = args.positiveIntegers("prefill", "2048");
        int[] contexts = args.nonNegativeIntegers("prefill-context", "0");
        int[] mixed = args.has("mixed-decodes") ? args.positiveIntegers("mixed-decodes", "1") : new int[0];
        int context = args.integer("context", 128), steps = args.integer("steps", 64), reps = args.integer("r", 5);
        if (context < 1 || steps < 1 || reps < 1) throw args.usage("--context, --steps and -r must be positive");
        try (Backend backend = BackendOptions.open(args); Model model = ModelLoader.load(Path.of(args.required("model")), null)) {
            ModelConfig c = model.config();
            int maxBatch = Math.max(Arrays.stream(batches).max().orElse(1), Arrays.stream(mixed).max().orElse(1)), maxPrefill = Arrays.stream(prefills).max().orElse(1);
            int maxCached = Arrays.stream(contexts).max().orElse(0);
            if (context + WARM_STEPS + steps + 1 > c.contextLength() || maxPrefill + maxCached > c.contextLength()) {
                throw args.usage("--context + --steps and --prefill + --prefill-context must fit the model's context of " + c.contextLength());
            }
            int bs = KvLayout.DEFAULT_BLOCK_SIZE;
            int blocks = Math.max(maxBatch * Math.ceilDiv(context + WARM_STEPS + steps + 1, bs), Math.ceilDiv(maxPrefill + maxCached, bs))
                    + (mixed.length == 0 ? 0 : maxBatch * Math.ceilDiv(context + reps + 2, bs) + Math.ceilDiv(maxPrefill, bs)) + 1;
            int maxMixed = Arrays.stream(mixed).max().orElse(0);
            DecoderModel decoder = DecoderModel.create(c, model.weights(), backend, Math.max(maxPrefill + maxMixed, maxBatch), Math.max(maxBatch, maxMixed + 1));
            KvStorage kv = backend.allocateKv(new KvLayout(c.layers(), blocks, bs, c.kvHeads(), c.headDim()));
            BlockPool pool = new BlockPool(blocks, bs);
            long weightBytes = weightBytes(model);
            System.out.printf("model %s, %s parameters, %.2f GB of weights; backend %s%n", args.required("model"),
                    BenchCommand.human(c.matrixParameters()), weightBytes / 1e9, backend.name());
            System.out.println("| test | ms/step | tokens/s | implied |");
            System.out.println("|---|---|---|---|");
            SplittableRandom rnd = new SplittableRandom(7);
            for (int b : batches) {
                double ms = decode(decoder, kv, pool, b, context, steps, rnd);
                System.out.printf("| decode batch %d, context %d | %.3f | %.1f | weights read at %.0f GB/s |%n", b, context, ms, b * 1000 / ms,
                        weightBytes / (ms / 1000) / 1e9);
                System.out.flush();
            }
            for (int cached : contexts) {
                for (int len : prefills) {
                    double[] t = new double[reps];
                    for (int i = 0; i < reps + 1; i++) {
                        if (i == 1 && backend instanceof dev.tandem.cuda.backend.CudaBackend cuda) cuda.resetProfile();
                        double ms = prefill(decoder, kv, pool, len, cached, rnd);
                        if (i > 0) t[i - 1] = ms; // the first run picks GEMM algorithms and warms up
                    }
                    Arrays.sort(t);
                    double ms = t[reps / 2];
                    // Causal attention: each new token attends to the cached ones and, on average, half the new ones.
                    double flops = 2.0 * c.matrixParameters() * len + 4.0 * c.layers() * c.heads() * c.headDim() * (double) len * (cached + len / 2.0);
                    System.out.printf("| prefill %d%s | %.2f | %.0f | %.0f TFLOP/s |%n", len, cached == 0 ? "" : " after " + cached + " cached",
                            ms, len * 1000 / ms, flops / (ms / 1000) / 1e12);
                    System.out.flush();
                }
            }
            for (int d : mixed) {
                for (int len : prefills) {
                    double ms = mixedStep(decoder, kv, pool, len, d, context, reps, rnd);
                    double flops = 2.0 * c.matrixParameters() * (len + d) + 2.0 * c.layers() * c.heads() * c.headDim() * (double) len * len;
                    System.out.printf("| mixed: prefill %d + %d decodes (context %d) | %.2f | %.0f | %.0f TFLOP/s |%n", len, d, context, ms,
                            (len + d) * 1000 / ms, flops / (ms / 1000) / 1e12);
                    System.out.flush();
                }
            }
        }
        return 0;
    }

    /** Mean ms of {@code steps} decode steps of {@code batch} sequences that each hold {@code context} cached tokens. */
    private static double decode(DecoderModel decoder, KvStorage kv, BlockPool pool, int batch, int context, int steps, SplittableRandom rnd) {
        ModelConfig c = decoder.config();
        List<BlockTable> tables = new ArrayList<>();
        try {
            cachedSequences(decoder, kv, pool, batch, context, rnd, tables);
            int[] next = rnd.ints(batch, 0, c.vocabSize()).toArray();
            long t0 = 0;
            for (int i = 0; i < WARM_STEPS + steps; i++) {
                if (i == WARM_STEPS) {
                    if (decoder.backend() instanceof dev.tandem.cuda.backend.CudaBackend cuda) cuda.resetProfile();
                    t0 = System.nanoTime();
                }
                int pos = context + i;
                for (BlockTable t : tables) {
                    if (!t.ensureCapacity(pos + 1)) throw new IllegalStateException("KV cache too small for the benchmark");
                }
                Activation logits = decoder.forward(StepBatch.decode(next, pos, tables), kv);
                decoder.backend().argmax(logits, next); // waits for the step, as the engine does
            }
            return (System.nanoTime() - t0) / 1e6 / steps;
        } finally {
            tables.forEach(BlockTable::release);
        }
    }

    /**
     * ms of one prefill step of {@code len} random tokens, through the first sampled token, on top of {@code cached}
     * tokens already in the sequence's cache (written untimed, in steps as large as the decoder takes).
     */
    private static double prefill(DecoderModel decoder, KvStorage kv, BlockPool pool, int len, int cached, SplittableRandom rnd) {
        int[] prompt = rnd.ints(cached + len, 0, decoder.config().vocabSize()).toArray();
        BlockTable t = new BlockTable(pool);
        try {
            t.ensureCapacity(cached + len);
            Activation filled = fill(decoder, kv, t, prompt, cached);
            if (filled != null) decoder.backend().argmax(filled, new int[1]); // the cached tokens are written before the clock starts
            long t0 = System.nanoTime();
            Activation logits = decoder.forward(StepBatch.ofSequence(prompt, cached, len, t, len - 1), kv);
            decoder.backend().argmax(logits, new int[1]);
            return (System.nanoTime() - t0) / 1e6;
        } finally {
            t.release();
        }
    }

    /**
     * Median ms of {@code reps} steps that each hold {@code decodes} decode rows (sequences of {@code context} cached
     * tokens, one more each step) and, after them, a new prompt of {@code len} tokens: one forward pass, as the serving
     * engine's chunked prefill runs it. A first, untimed step picks GEMM algorithms.
     */
    private static double mixedStep(DecoderModel decoder, KvStorage kv, BlockPool pool, int len, int decodes, int context, int reps,
                                    SplittableRandom rnd) {
        ModelConfig c = decoder.config();
        List<BlockTable> tables = new ArrayList<>();
        try {
            cachedSequences(decoder, kv, pool, decodes, context, rnd, tables);
            double[] times = new double[reps];
            for (int i = 0; i < reps + 1; i++) {
                int pos = context + i, n = decodes + len;
                int[] tokens = rnd.ints(n, 0, c.vocabSize()).toArray(), positions = new int[n], slots = new int[n], rows = new int[decodes + 1];
                List<dev.tandem.core.backend.AttentionBatch.Seq> seqs = new ArrayList<>();
                for (int s = 0; s < decodes; s++) {
                    BlockTable t = tables.get(s);
                    if (!t.ensureCapacity(pos + 1)) throw new IllegalStateException("KV cache too small for the benchmark");
                    positions[s] = pos;
                    slots[s] = t.slot(pos);
                    rows[s] = s;
                    seqs.add(new dev.tandem.core.backend.AttentionBatch.Seq(s, 1, pos + 1, t.blocks()));
                }
                BlockTable p = new BlockTable(pool);
                try {
                    p.ensureCapacity(len);
                    for (int j = 0; j < len; j++) {
                        positions[decodes + j] = j;
                        slots[decodes + j] = p.slot(j);
                    }
                    seqs.add(new dev.tandem.core.backend.AttentionBatch.Seq(decodes, len, len, p.blocks()));
                    rows[decodes] = n - 1;
                    if (i == 1 && decoder.backend() instanceof dev.tandem.cuda.backend.CudaBackend cuda) cuda.resetProfile();
                    long t0 = System.nanoTime();
                    Activation logits = decoder.forward(new StepBatch(tokens, positions, slots, seqs, rows), kv);
                    decoder.backend().argmax(logits, new int[decodes + 1]);
                    if (i > 0) times[i - 1] = (System.nanoTime() - t0) / 1e6;
                } finally {
                    p.release();
                }
            }
            Arrays.sort(times);
            return times[reps / 2];
        } finally {
            tables.forEach(BlockTable::release);
        }
    }

    /** Adds {@code batch} sequences to {@code tables}, each with {@code context} random tokens in its cache. */
    private static void cachedSequences(DecoderModel decoder, KvStorage kv, BlockPool pool, int batch, int context, SplittableRandom rnd,
                                        List<BlockTable> tables) {
        for (int s = 0; s < batch; s++) {
            BlockTable t = new BlockTable(pool);
            tables.add(t);
            fill(decoder, kv, t, rnd.ints(context, 0, decoder.config().vocabSize()).toArray(), context);
        }
    }

    /**
     * Writes positions [0, count) of {@code tokens} into {@code t}'s cache, in steps as large as the decoder takes;
     * returns the last step's logits (null when count is 0), not waited for.
     */
    private static Activation fill(DecoderModel decoder, KvStorage kv, BlockTable t, int[] tokens, int count) {
        Activation last = null;
        for (int start = 0; start < count; start += decoder.maxTokens()) {
            int n = Math.min(decoder.maxTokens(), count - start);
            t.ensureCapacity(start + n);
            last = decoder.forward(StepBatch.ofSequence(tokens, start, n, t, n - 1), kv);
        }
        return last;
    }

    /** Bytes a decode step reads: every layer's matrices and the output head (the embedding is only gathered). */
    private static long weightBytes(Model model) {
        var w = model.weights();
        long total = w.output().data().byteSize();
        for (var l : w.layers()) {
            for (var t : l.matrices()) total += t.data().byteSize();
        }
        return total;
    }
}
