package dev.tandem.server.cli;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.kv.BlockPool;
import dev.tandem.core.kv.BlockTable;
import dev.tandem.core.model.DecoderModel;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.ModelWeights;
import dev.tandem.core.model.StepBatch;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * `tandem bench generate`: prompt processing (pp: one sequence of p tokens, in chunks of up to 512) and text
 * generation (tg: n tokens one at a time from an empty context), each repeated r times after a warm-up,
 * printed as decoder-bench's table (tokens/s, mean ± sd) so figures line up with decoder.cpp's.
 */
final class BenchCommand {
    static final Map<String, String> VALUED = Args.options(
            "model", "model folder or file",
            "p", "prompt tokens for the pp test, 0 to skip (default 512)",
            "n", "generated tokens for the tg test, 0 to skip (default 128)",
            "r", "repetitions (default 5)",
            "ubatch", "most tokens per forward pass in pp (default 512)",
            BackendOptions.OPTIONS[0], BackendOptions.OPTIONS[1], BackendOptions.OPTIONS[2], BackendOptions.OPTIONS[3],
            BackendOptions.OPTIONS[4], BackendOptions.OPTIONS[5]);
    static final Map<String, String> FLAGS = Args.options("help", "show options");

    int run(String[] argv) throws Exception {
        if (argv.length > 0 && argv[0].equals("serve")) return dev.tandem.bench.ServeBenchmark.run(java.util.Arrays.copyOfRange(argv, 1, argv.length));
        if (argv.length > 0 && argv[0].equals("simulate")) return new SimBenchCommand().run(java.util.Arrays.copyOfRange(argv, 1, argv.length));
        if (argv.length > 0 && argv[0].equals("spec")) return new SpecBenchCommand().run(java.util.Arrays.copyOfRange(argv, 1, argv.length));
        if (argv.length > 0 && argv[0].equals("steps")) return new StepBenchCommand().run(java.util.Arrays.copyOfRange(argv, 1, argv.length));
        if (argv.length > 0 && argv[0].equals("overhead")) return new OverheadBenchCommand().run(java.util.Arrays.copyOfRange(argv, 1, argv.length));
        if (argv.length > 0 && argv[0].equals("offload")) return new OffloadBenchCommand().run(java.util.Arrays.copyOfRange(argv, 1, argv.length));
        if (argv.length > 0 && argv[0].equals("handover")) return new HandoverBenchCommand().run(java.util.Arrays.copyOfRange(argv, 1, argv.length));
        if (argv.length == 0 || !argv[0].equals("generate")) {
            throw new Args.UsageException("bench: expected 'bench generate --model PATH [-p 512] [-n 128] [-r 5]', 'bench steps --model PATH --device cuda', "
                    + "'bench spec --model PATH --draft-model PATH' or 'bench serve --url URL --trace FILE ...'");
        }
        Args args = new Args("bench generate", java.util.Arrays.copyOfRange(argv, 1, argv.length), VALUED, FLAGS);
        if (args.flag("help")) return Help.print("bench generate --model PATH [-p 512] [-n 128] [-r 5]", VALUED, FLAGS);
        int p = args.integer("p", 512), n = args.integer("n", 128), reps = args.integer("r", 5), ubatch = args.integer("ubatch", 512);
        if (p < 0 || n < 0 || reps <= 0 || ubatch <= 0) throw args.usage("-p and -n must be >= 0, -r and --ubatch > 0");
        Path path = Path.of(args.required("model"));
        try (Backend backend = BackendOptions.open(args); Model model = ModelLoader.load(path, null)) {
            ModelConfig c = model.config();
            if (Math.max(p, n) > c.contextLength()) {
                throw args.usage("-p " + p + " / -n " + n + " exceed the model's context of " + c.contextLength());
            }
            DecoderModel decoder = DecoderModel.create(c, model.weights(), backend, Math.min(ubatch, Math.max(1, p)), 1);
            int ctx = Math.max(p, n) + 1;
            int blocks = (ctx + KvLayout.DEFAULT_BLOCK_SIZE - 1) / KvLayout.DEFAULT_BLOCK_SIZE;
            KvStorage kv = backend.allocateKv(new KvLayout(c.layers(), blocks, KvLayout.DEFAULT_BLOCK_SIZE, c.kvHeads(), c.headDim()));
            BlockPool pool = new BlockPool(blocks, KvLayout.DEFAULT_BLOCK_SIZE);
            String threads = args.string("threads", String.valueOf(Runtime.getRuntime().availableProcessors()));
            String modelName = c.architecture() + " " + human(c.matrixParameters()) + " " + weightType(model.weights());
            String size = String.format("%.2f MiB", weightBytes(model.weights()) / 1048576.0);
            System.out.println("| model | size | params | backend | threads | test | t/s |");
            System.out.println("| --- | ---: | ---: | --- | ---: | ---: | ---: |");
            SplittableRandom rnd = new SplittableRandom(42);
            if (p > 0) {
                double[] r = repeat(reps, () -> prompt(decoder, kv, pool, randomTokens(rnd, p, c.vocabSize()), ubatch));
                row(modelName, size, c, backend, threads, "pp" + p, r);
            }
            if (n > 0) {
                double[] r = repeat(reps, () -> decode(decoder, kv, pool, randomTokens(rnd, n, c.vocabSize())));
                row(modelName, size, c, backend, threads, "tg" + n, r);
            }
        }
        return 0;
    }

    private interface Run { double tokensPerSecond(); }

    private static double[] repeat(int reps, Run run) {
        run.tokensPerSecond(); // warm-up: JIT and page-in of the mapped weights
        double[] r = new double[reps];
        for (int i = 0; i < reps; i++) r[i] = run.tokensPerSecond();
        return r;
    }

    private static int[] randomTokens(SplittableRandom rnd, int count, int vocab) {
        int[] t = new int[count];
        for (int i = 0; i < count; i++) t[i] = rnd.nextInt(vocab);
        return t;
    }

    private static double prompt(DecoderModel decoder, KvStorage kv, BlockPool pool, int[] tokens, int ubatch) {
        BlockTable table = new BlockTable(pool);
        try {
            long t0 = System.nanoTime();
            for (int start = 0; start < tokens.length; start += ubatch) {
                int len = Math.min(ubatch, tokens.length - start);
                step(decoder, kv, table, tokens, start, len);
            }
            return tokens.length / ((System.nanoTime() - t0) / 1e9);
        } finally {
            table.release();
        }
    }

    private static double decode(DecoderModel decoder, KvStorage kv, BlockPool pool, int[] tokens) {
        BlockTable table = new BlockTable(pool);
        try {
            long t0 = System.nanoTime();
            for (int i = 0; i < tokens.length; i++) step(decoder, kv, table, tokens, i, 1);
            return tokens.length / ((System.nanoTime() - t0) / 1e9);
        } finally {
            table.release();
        }
    }

    private static void step(DecoderModel decoder, KvStorage kv, BlockTable table, int[] tokens, int start, int len) {
        table.ensureCapacity(start + len);
        var logits = decoder.forward(StepBatch.ofSequence(tokens, start, len, table, len - 1), kv);
        decoder.backend().read(logits, 0, new float[logits.cols()]); // wait for the result, as a caller would
    }

    private static void row(String model, String size, ModelConfig c, Backend backend, String threads, String test, double[] r) {
        double mean = 0;
        for (double x : r) mean += x;
        mean /= r.length;
        double var = 0;
        for (double x : r) var += (x - mean) * (x - mean);
        double sd = r.length > 1 ? Math.sqrt(var / (r.length - 1)) : 0;
        System.out.printf("| %s | %s | %s | %s | %s | %s | %.2f ± %.2f |%n", model, size, human(c.matrixParameters()),
                backend.name(), threads, test, mean, sd);
        System.out.flush();
    }

    static String human(long params) {
        if (params >= 1e9) return String.format("%.2f B", params / 1e9);
        if (params >= 1e6) return String.format("%.2f M", params / 1e6);
        return String.format("%.2f K", params / 1e3);
    }

    private static String weightType(ModelWeights w) {
        List<DType> types = new ArrayList<>();
        for (var l : w.layers()) if (!types.contains(l.wq().dtype())) types.add(l.wq().dtype());
        return types.size() == 1 ? types.get(0).name() : types.toString();
    }

    private static long weightBytes(ModelWeights w) {
        long b = w.embedding().data().byteSize() + w.finalNorm().data().byteSize();
        if (w.output() != w.embedding()) b += w.output().data().byteSize();
        for (var l : w.layers()) for (Tensor t : l.tensors()) b += t.data().byteSize();
        if (w.positions() != null) b += w.positions().data().byteSize();
        return b;
    }
}
