package dev.tandem.server.cli;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineConfig;
import dev.tandem.engine.FinishReason;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.TokenEvent;
import dev.tandem.engine.TokenListener;
import dev.tandem.engine.exec.ModelRunner;
import dev.tandem.engine.spec.SpecDecodeStats;
import dev.tandem.engine.spec.SpeculativeConfig;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * `tandem bench spec`: tokens/s of the serving engine with and without speculative decoding, the two runs of each
 * configuration interleaved in one process (the machine is shared), over temperatures, batch sizes and k. Beside
 * the speeds it prints what theory allows (Leviathan et al. 2023): tokens per target pass (1 - α^(k+1)) / (1 - α)
 * from the measured acceptance α, and the speedup (1 - α^(k+1)) / ((1 - α)(k c + 1)) with the measured cost c of a
 * draft position relative to a plain target pass. That formula takes a verifying pass to cost a plain one; the
 * measured ratio v of the two and the speedup it allows, (1 - α^(k+1)) / ((1 - α)(k c + v)), are printed too.
 */
final class SpecBenchCommand {
    /** The prompts of ../shared/models/gutenberg-stories/golden.json. */
    static final String[] GOLDEN_PROMPTS = {"Once upon a time", "The little dog", "Tom and Lily went to", "The old king had three daughters",
            "It was a cold winter night, and", "\"Where are you going?\" asked the"};

    static final Map<String, String> VALUED = Args.options(
            "model", "target model folder or file",
            SpeculationOptions.VALUED[0], SpeculationOptions.VALUED[1], SpeculationOptions.VALUED[2], SpeculationOptions.VALUED[3],
            SpeculationOptions.VALUED[6], SpeculationOptions.VALUED[7], SpeculationOptions.VALUED[8], SpeculationOptions.VALUED[9],
            "n", "tokens generated per request (default 64)",
            "r", "repetitions of each interleaved pair (default 2)",
            "batch", "batch sizes, comma-separated (default 1,8)",
            "temperature", "temperatures, comma-separated (default 0,0.8)",
            "k", "k values, comma-separated, 'adaptive' for adaptive up to the largest (default 2,3,4,5,6,7,8,adaptive)",
            BackendOptions.OPTIONS[0], BackendOptions.OPTIONS[1], BackendOptions.OPTIONS[2], BackendOptions.OPTIONS[3],
            BackendOptions.OPTIONS[4], BackendOptions.OPTIONS[5]);
    static final Map<String, String> FLAGS = Args.options(
            "pass-cost", "only time the target's forward pass scoring 1..9 tokens of one sequence (what verifying costs)",
            "help", "show options");

    private record Run(double seconds, int tokens, long steps, SpecDecodeStats spec) {
        double tokensPerSecond() { return tokens / seconds; }
    }

    int run(String[] argv) throws Exception {
        Args args = new Args("bench spec", argv, VALUED, FLAGS);
        String synopsis = "bench spec --model PATH (--draft-model PATH | --draft ngram) [-n 64] [-r 2] [--batch 1,8] [--temperature 0,0.8] [--k 2,...,8,adaptive]";
        if (args.flag("help")) return Help.print(synopsis, VALUED, FLAGS);
        int n = args.integer("n", 64), reps = args.integer("r", 2);
        if (n <= 0 || reps <= 0) throw args.usage("-n and -r must be positive");
        int[] batches = args.positiveIntegers("batch", "1,8");
        if (batches.length == 0) throw args.usage("--batch needs at least one value");
        float[] temps = floats(args, "temperature", "0,0.8");
        String[] ks = args.string("k", "2,3,4,5,6,7,8,adaptive").split(",");
        int kMax = 0;
        for (String k : ks) if (!k.equals("adaptive")) kMax = Math.max(kMax, parseK(args, k));
        if (kMax == 0) kMax = 8; // adaptive alone: up to 8
        if (args.flag("pass-cost")) return passCost(args);
        if (!args.has("draft-model") && !args.has("draft")) throw args.usage("give --draft-model PATH or --draft ngram");
        try (Model model = ModelLoader.load(Path.of(args.required("model")), null);
             SpeculationOptions drafter = SpeculationOptions.open(args, model);
             Backend plainBackend = BackendOptions.open(args)) {
            int maxPrompt = 0;
            List<int[]> prompts = new ArrayList<>();
            for (String p : GOLDEN_PROMPTS) {
                prompts.add(model.tokenizer().encode(p, true));
                maxPrompt = Math.max(maxPrompt, prompts.getLast().length);
            }
            int maxBatch = 0;
            for (int b : batches) maxBatch = Math.max(maxBatch, b);
            // Room for every sequence of the largest batch, its drafts and a spare block each.
            int blocksPerSeq = (maxPrompt + n + SpeculativeConfig.MAX_SPECULATIVE_TOKENS + 15) / 16 + 1;
            EngineConfig config = EngineConfig.DEFAULT.withPrefixCaching(false).withMaxNumSeqs(Math.max(1, maxBatch))
                    .withKvCacheBytes(ModelRunner.kvBytesPerToken(model.config()) * 16 * blocksPerSeq * maxBatch);
            SpeculativeConfig base = drafter.config();
            System.out.printf("target %s; drafter %s; %d tokens per request, golden prompts, %d interleaved repetitions; threads %s%n",
                    args.required("model"), base.draftModel() == null ? "n-gram prompt lookup" : args.string("draft-model", ""), n, reps,
                    args.string("threads", String.valueOf(Runtime.getRuntime().availableProcessors())));
            System.out.println("| T | batch | k | plain tok/s | spec tok/s | speedup | ceiling | of ceiling | α | tokens/pass | (1-α^(k+1))/(1-α) | c | v | ceiling at v |");
            System.out.println("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            boolean warm = false;
            try (Engine plain = new Engine(model, plainBackend, config)) {
                for (String kText : ks) {
                    boolean adaptive = kText.equals("adaptive");
                    int k = adaptive ? kMax : parseK(args, kText);
                    SpeculativeConfig spec = new SpeculativeConfig(base.draftModel(), k, adaptive, base.ngramMin(), base.ngramMax(),
                            base.verifyCostPerToken());
                    try (Backend specBackend = BackendOptions.open(args); Engine speculative = new Engine(model, specBackend, config, spec)) {
                        for (float t : temps) {
                            for (int b : batches) {
                                // Warm-up of both engines; the first configuration also warms the JIT for the rest.
                                for (int w = 0; w < (warm ? 1 : 4); w++) {
                                    measure(plain, prompts, b, n, t);
                                    measure(speculative, prompts, b, n, t);
                                }
                                warm = true;
                                List<Run> p = new ArrayList<>(), s = new ArrayList<>();
                                for (int r = 0; r < reps; r++) {
                                    p.add(measure(plain, prompts, b, n, t));
                                    s.add(measure(speculative, prompts, b, n, t));
                                }
                                row(t, b, adaptive ? "adaptive ≤" + k : String.valueOf(k), p, s);
                            }
                        }
                    }
                }
            }
        }
        return 0;
    }

    /**
     * The target's forward pass over n = 1..9 new tokens of one sequence after 100 in the cache (a verification of
     * k = n - 1 drafts), sizes interleaved, medians of 200 rounds after 50 of warm-up. Speculation assumes the n-token
     * pass costs about what the 1-token one does; this shows what it costs on this machine.
     */
    private static int passCost(Args args) {
        try (Model model = ModelLoader.load(Path.of(args.required("model")), null); Backend backend = BackendOptions.open(args)) {
            var c = model.config();
            var decoder = dev.tandem.core.model.DecoderModel.create(c, model.weights(), backend, 128, 16);
            var kv = backend.allocateKv(new dev.tandem.core.backend.KvLayout(c.layers(), 16, 16, c.kvHeads(), c.headDim()));
            var table = new dev.tandem.core.kv.BlockTable(new dev.tandem.core.kv.BlockPool(16, 16));
            table.ensureCapacity(128);
            int[] tokens = new int[128];
            for (int i = 0; i < tokens.length; i++) tokens[i] = (i * 37) % c.vocabSize();
            decoder.forward(dev.tandem.core.model.StepBatch.ofSequence(tokens, 0, 100, table, 99), kv);
            int sizes = 9, rounds = 250, warm = 50;
            double[][] ms = new double[sizes][rounds - warm];
            float[] row = new float[c.vocabSize()];
            for (int round = 0; round < rounds; round++) {
                for (int n = 1; n <= sizes; n++) {
                    int[] rows = new int[n];
                    for (int i = 0; i < n; i++) rows[i] = i;
                    long t0 = System.nanoTime();
                    var out = decoder.forward(dev.tandem.core.model.StepBatch.ofSequence(tokens, 100, n, table, rows), kv);
                    backend.read(out, n - 1, row);
                    if (round >= warm) ms[n - 1][round - warm] = (System.nanoTime() - t0) / 1e6;
                }
            }
            System.out.printf("target %s, %s, threads %s: one sequence, 100 tokens cached, logits for every scored token%n", args.required("model"),
                    backend.name(), args.string("threads", String.valueOf(Runtime.getRuntime().availableProcessors())));
            System.out.println("| tokens scored (k + 1) | median ms | x one token |");
            System.out.println("|---:|---:|---:|");
            double one = median(ms[0]);
            for (int n = 1; n <= sizes; n++) System.out.printf("| %d | %.3f | %.2f |%n", n, median(ms[n - 1]), median(ms[n - 1]) / one);
        }
        return 0;
    }

    private static int parseK(Args args, String k) {
        try {
            int v = Integer.parseInt(k.trim());
            if (v < 1 || v > SpeculativeConfig.MAX_SPECULATIVE_TOKENS) throw new NumberFormatException();
            return v;
        } catch (NumberFormatException e) {
            throw args.usage("--k expects numbers in 1.." + SpeculativeConfig.MAX_SPECULATIVE_TOKENS + " or 'adaptive', got '" + k + "'");
        }
    }

    /** One pass over the golden prompts, {@code batch} requests at a time (all prompts at least once), n tokens each past EOS. */
    private static Run measure(Engine engine, List<int[]> prompts, int batch, int n, float temperature) {
        int requests = ((prompts.size() + batch - 1) / batch) * batch;
        SpecDecodeStats before = engine.stats().speculative();
        long steps0 = engine.stats().steps();
        long t0 = System.nanoTime();
        int tokens = 0;
        for (int start = 0; start < requests; start += batch) {
            List<CompletableFuture<Integer>> wave = new ArrayList<>();
            for (int i = start; i < start + batch; i++) {
                SamplingParams params = temperature == 0 ? SamplingParams.GREEDY
                        : new SamplingParams(temperature, 40, 0.95f, 0.05f, 1f, 64, 0f, 0f, 1234 + i);
                wave.add(submit(engine, new GenerationRequest(prompts.get(i % prompts.size()), n, params, true, -1)));
            }
            for (var f : wave) tokens += f.join();
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        awaitStats(engine, steps0);
        return new Run(seconds, tokens, engine.stats().steps() - steps0, minus(engine.stats().speculative(), before));
    }

    /** The engine publishes its stats after each step; wait until the last step's are out. */
    private static void awaitStats(Engine engine, long steps0) {
        long end = System.nanoTime() + 1_000_000_000L;
        while ((engine.stats().running() > 0 || engine.stats().steps() == steps0) && System.nanoTime() < end) Thread.onSpinWait();
    }

    private static CompletableFuture<Integer> submit(Engine engine, GenerationRequest request) {
        CompletableFuture<Integer> done = new CompletableFuture<>();
        engine.submit(request, new TokenListener() {
            public void onToken(TokenEvent token) {}

            public void onFinish(FinishReason reason, int promptTokens, int generatedTokens, int cached) { done.complete(generatedTokens); }

            public void onError(Throwable error) { done.completeExceptionally(error); }
        });
        return done;
    }

    private static SpecDecodeStats minus(SpecDecodeStats a, SpecDecodeStats b) {
        if (!a.enabled()) return a;
        long[] acc = a.acceptedPerPosition().clone(), drafted = a.draftedPerPosition().clone();
        for (int i = 0; i < acc.length; i++) {
            acc[i] -= b.acceptedPerPosition()[i];
            drafted[i] -= b.draftedPerPosition()[i];
        }
        return new SpecDecodeStats(a.drafter(), a.drafts() - b.drafts(), a.draftTokens() - b.draftTokens(), a.acceptedTokens() - b.acceptedTokens(),
                acc, drafted, a.fullyAccepted() - b.fullyAccepted(), a.draftNanos() - b.draftNanos(), a.verifyNanos() - b.verifyNanos(),
                a.verifySteps() - b.verifySteps());
    }

    private static void row(float t, int batch, String k, List<Run> plain, List<Run> spec) {
        // Medians, and the speedup as the median of each adjacent pair's ratio: on a shared machine the load drifts
        // between pairs more than within one.
        double[] plainRate = new double[plain.size()], specRate = new double[spec.size()], ratio = new double[spec.size()], plainStep = new double[plain.size()];
        for (int i = 0; i < plain.size(); i++) {
            plainRate[i] = plain.get(i).tokensPerSecond();
            plainStep[i] = plain.get(i).seconds() * 1e9 / plain.get(i).steps();
            specRate[i] = spec.get(i).tokensPerSecond();
            ratio[i] = specRate[i] / plainRate[i];
        }
        double plainTps = median(plainRate), specTps = median(specRate), plainStepNanos = median(plainStep);
        long drafts = 0, draftTokens = 0, accepted = 0, fully = 0, draftNanos = 0, verifyNanos = 0, verifySteps = 0;
        for (Run r : spec) {
            SpecDecodeStats s = r.spec();
            drafts += s.drafts();
            draftTokens += s.draftTokens();
            accepted += s.acceptedTokens();
            fully += s.fullyAccepted();
            draftNanos += s.draftNanos();
            verifyNanos += s.verifyNanos();
            verifySteps += s.verifySteps();
        }
        SpecDecodeStats all = new SpecDecodeStats("", drafts, draftTokens, accepted, new long[0], new long[0], fully, draftNanos, verifyNanos, verifySteps);
        double alpha = all.alpha();
        double meanK = drafts == 0 ? 0 : draftTokens / (double) drafts;
        double draftStep = verifySteps == 0 ? 0 : draftNanos / (double) verifySteps;
        // c: one draft position (a draft pass over the batch) against one plain target pass over the same batch.
        double c = meanK == 0 ? 0 : draftStep / meanK / plainStepNanos;
        double tokensPerPass = (1 - Math.pow(alpha, meanK + 1)) / (1 - alpha);
        double ceiling = tokensPerPass / (meanK * c + 1);
        // v: a verifying target step against a plain one (the formula above assumes 1; on a CPU scoring k + 1 tokens costs more).
        double v = verifySteps == 0 ? 0 : verifyNanos / (double) verifySteps / plainStepNanos;
        double speedup = median(ratio);
        System.out.printf("| %.1f | %d | %s | %.1f | %.1f | %.2fx | %.2fx | %.0f%% | %.3f | %.2f | %.2f | %.3f | %.2f | %.2fx |%n", t, batch, k, plainTps, specTps,
                speedup, ceiling, 100 * speedup / ceiling, alpha, all.meanAcceptanceLength(), tokensPerPass, c, v, tokensPerPass / (meanK * c + v));
        System.out.flush();
    }

    private static double median(double[] x) {
        double[] s = x.clone();
        java.util.Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static float[] floats(Args args, String name, String def) {
        String[] parts = args.string(name, def).split(",");
        float[] out = new float[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                out[i] = Float.parseFloat(parts[i].trim());
                if (!(out[i] >= 0) || Float.isInfinite(out[i])) throw new NumberFormatException();
            } catch (NumberFormatException e) {
                throw args.usage("--" + name + " expects numbers >= 0 separated by commas, got '" + args.string(name, def) + "'");
            }
        }
        return out;
    }
}
