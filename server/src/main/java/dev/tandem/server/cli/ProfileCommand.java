package dev.tandem.server.cli;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.AttentionBatch;
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
import dev.tandem.cuda.CudaDriver;
import dev.tandem.cuda.Nvml;
import dev.tandem.cuda.backend.CudaBackend;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * `tandem profile`: the performance profile the cluster simulator reads, measured on this machine's GPU, in
 * SplitwiseSim's perf_model.csv format (prompt_time: one batched prefill of batch_size prompts of prompt_size tokens;
 * token_time: one decode step of batch_size sequences; e2e_time = prompt_time + token_size x token_time; times in ms),
 * plus the board's measured draw in each phase (prompt_power_w, token_power_w, through NVML). NVML's reading is a
 * running average (about one second on Hopper), so each phase is also run on its own for --power-seconds before the
 * reading is taken.
 */
final class ProfileCommand {
    static final Map<String, String> VALUED = Args.options(
            "model", "model folder or file",
            "out", "CSV file to write",
            "model-name", "the profile's model column (default: the model folder's name)",
            "hardware", "the profile's hardware column (default: the GPU's name, e.g. h200)",
            "prompt-sizes", "comma-separated prompt lengths (default 128,256,512,1024,2048,4096,8192)",
            "batch-sizes", "comma-separated batch sizes (default 1,2,4,8,16,32,64)",
            "token-size", "decode steps timed per point (default 128)",
            "max-batch-tokens", "skip points whose batched prefill exceeds this many tokens (default 16384)",
            "power-seconds", "how long each phase runs alone before its power is read, 0 to skip power (default 1.5)",
            "r", "repetitions per point (default 2)",
            BackendOptions.OPTIONS[0], BackendOptions.OPTIONS[1], BackendOptions.OPTIONS[2], BackendOptions.OPTIONS[3],
            BackendOptions.OPTIONS[4], BackendOptions.OPTIONS[5]);
    static final Map<String, String> FLAGS = Args.options("help", "show options");
    private static final String USAGE = "profile --model PATH --device cuda[:N] --out FILE.csv [--prompt-sizes ...] [--batch-sizes ...]";

    int run(String[] argv) throws IOException {
        Args args = new Args("profile", argv, VALUED, FLAGS);
        if (args.flag("help")) return Help.print(USAGE, VALUED, FLAGS);
        Path modelPath = Path.of(args.required("model")), out = Path.of(args.required("out"));
        int[] prompts = args.positiveIntegers("prompt-sizes", "128,256,512,1024,2048,4096,8192");
        int[] batches = args.positiveIntegers("batch-sizes", "1,2,4,8,16,32,64");
        if (prompts.length == 0 || batches.length == 0) throw args.usage("--prompt-sizes and --batch-sizes need at least one value");
        int tokens = args.integer("token-size", 128), maxBatchTokens = args.integer("max-batch-tokens", 16384), reps = args.integer("r", 2);
        double powerSeconds = Double.parseDouble(args.string("power-seconds", "1.5"));
        if (tokens < 1 || maxBatchTokens < 1 || reps < 1 || powerSeconds < 0) throw args.usage("--token-size, --max-batch-tokens and -r must be positive");
        try (Backend backend = BackendOptions.open(args); Model model = ModelLoader.load(modelPath, null)) {
            if (!(backend instanceof CudaBackend gpu)) throw args.usage("profile measures a GPU: pass --device cuda[:N]");
            ModelConfig c = model.config();
            int maxPrompt = Arrays.stream(prompts).max().orElseThrow(), maxBatch = Arrays.stream(batches).max().orElseThrow();
            if (maxPrompt + tokens + 1 > c.contextLength()) throw args.usage("prompt + token size exceed the model's context of " + c.contextLength());
            int bs = KvLayout.DEFAULT_BLOCK_SIZE;
            long kvTokens = 0;
            for (int p : prompts) for (int b : batches) if ((long) p * b <= maxBatchTokens) kvTokens = Math.max(kvTokens, (long) b * (p + tokens + bs));
            int blocks = (int) Math.ceilDiv(kvTokens, bs) + maxBatch;
            int stepTokens = Math.min(maxBatchTokens, maxPrompt * maxBatch);
            DecoderModel decoder = DecoderModel.create(c, model.weights(), backend, Math.max(stepTokens, maxBatch), maxBatch);
            KvStorage kv = backend.allocateKv(new KvLayout(c.layers(), blocks, bs, c.kvHeads(), c.headDim()));
            BlockPool pool = new BlockPool(blocks, bs);
            String name = args.string("model-name", modelPath.getFileName().toString());
            String hardware = args.string("hardware", hardwareName(gpu));
            Nvml nvml = powerSeconds > 0 ? new Nvml(CudaDriver.get(), gpu.deviceHandle()) : null;
            double limit = nvml == null ? Double.NaN : nvml.powerLimitWatts();
            Files.createDirectories(out.toAbsolutePath().getParent());
            try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(out))) {
                w.println("model,hardware,prompt_size,batch_size,token_size,peak_power,average_power,prompt_time,token_time,e2e_time,tensor_parallel,prompt_power_w,token_power_w");
                System.err.printf("profile: %s on %s (power limit %.0f W), %d x %d points%n", name, backend.name(), limit, prompts.length, batches.length);
                SplittableRandom rnd = new SplittableRandom(3);
                for (int p : prompts) {
                    for (int b : batches) {
                        if ((long) p * b > maxBatchTokens) continue;
                        measure(decoder, kv, pool, p, b, tokens, rnd); // warm-up: graphs recorded, GEMM algorithms chosen
                        List<Point> points = new ArrayList<>();
                        for (int r = 0; r < reps; r++) points.add(measure(decoder, kv, pool, p, b, tokens, rnd));
                        double pw = Double.NaN, tw = Double.NaN;
                        if (nvml != null) {
                            pw = phasePower(nvml, powerSeconds, () -> measure(decoder, kv, pool, p, b, 0, rnd));
                            tw = phasePower(nvml, powerSeconds, () -> measure(decoder, kv, pool, p, b, Math.min(tokens, 32), rnd));
                        }
                        for (Point pt : points) {
                            double e2e = pt.promptMs + tokens * pt.tokenMs;
                            double peak = Math.max(pw, tw) / limit, avg = (pw * pt.promptMs + tw * tokens * pt.tokenMs) / e2e / limit;
                            w.printf(Locale.ROOT, "%s,%s,%d,%d,%d,%s,%s,%.4f,%.4f,%.4f,1,%s,%s%n", name, hardware, p, b, tokens, num(peak), num(avg),
                                    pt.promptMs, pt.tokenMs, e2e, num(pw), num(tw));
                            System.err.printf(Locale.ROOT, "  prompt %5d batch %3d: prefill %8.2f ms, decode step %7.3f ms, power %s / %s W%n",
                                    p, b, pt.promptMs, pt.tokenMs, num(pw), num(tw));
                        }
                        w.flush();
                    }
                }
            } finally {
                if (nvml != null) nvml.close();
            }
            System.err.println("profile: wrote " + out);
        }
        return 0;
    }

    private record Point(double promptMs, double tokenMs) {}

    /**
     * One batched prefill of {@code batch} random prompts of {@code prompt} tokens (through the first token), then
     * {@code tokens} decode steps of all of them; each waits for the device, as the engine does.
     */
    private static Point measure(DecoderModel decoder, KvStorage kv, BlockPool pool, int prompt, int batch, int tokens, SplittableRandom rnd) {
        ModelConfig c = decoder.config();
        List<BlockTable> tables = new ArrayList<>();
        try {
            int n = prompt * batch;
            int[] ids = rnd.ints(n, 0, c.vocabSize()).toArray(), positions = new int[n], slots = new int[n], last = new int[batch];
            List<AttentionBatch.Seq> seqs = new ArrayList<>();
            for (int s = 0; s < batch; s++) {
                BlockTable t = new BlockTable(pool);
                tables.add(t);
                if (!t.ensureCapacity(prompt + tokens + 1)) throw new IllegalStateException("KV cache too small for the profile");
                for (int i = 0; i < prompt; i++) {
                    positions[s * prompt + i] = i;
                    slots[s * prompt + i] = t.slot(i);
                }
                seqs.add(new AttentionBatch.Seq(s * prompt, prompt, prompt, t.blocks()));
                last[s] = s * prompt + prompt - 1;
            }
            int[] next = new int[batch];
            long t0 = System.nanoTime();
            Activation logits = decoder.forward(new StepBatch(ids, positions, slots, seqs, last), kv);
            decoder.backend().argmax(logits, next);
            double promptMs = (System.nanoTime() - t0) / 1e6;
            long t1 = System.nanoTime();
            for (int step = 0; step < tokens; step++) {
                logits = decoder.forward(StepBatch.decode(next, prompt + step, tables), kv);
                decoder.backend().argmax(logits, next);
            }
            double tokenMs = tokens == 0 ? 0 : (System.nanoTime() - t1) / 1e6 / tokens;
            return new Point(promptMs, tokenMs);
        } finally {
            tables.forEach(BlockTable::release);
        }
    }

    /** Runs {@code phase} repeatedly for {@code seconds}, then reads the board's (running-average) draw. */
    private static double phasePower(Nvml nvml, double seconds, Runnable phase) {
        long end = System.nanoTime() + (long) (seconds * 1e9);
        while (System.nanoTime() < end) phase.run();
        return nvml.powerWatts();
    }

    private static String hardwareName(CudaBackend gpu) {
        String n = CudaDriver.get().deviceName(gpu.deviceHandle()).toLowerCase(Locale.ROOT);
        for (String known : new String[] {"h200", "h100", "a100", "l40s", "l4", "b200"}) if (n.contains(known)) return known;
        return n.replace("nvidia ", "").replace(' ', '-');
    }

    private static String num(double v) { return Double.isNaN(v) ? "" : String.format(Locale.ROOT, "%.4f", v); }
}
