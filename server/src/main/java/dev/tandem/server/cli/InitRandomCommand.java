package dev.tandem.server.cli;

import dev.tandem.core.backend.Rope;
import dev.tandem.core.format.gguf.GgufModelWriter;
import dev.tandem.core.format.gguf.GgufVocab;
import dev.tandem.core.format.hf.HfConfig;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.tensor.DType;

import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * `tandem init-random`: a seeded random-weight model at a real shape, for benchmarks (weights normal(0, 0.02),
 * norms 1). Each row is drawn from its own seeded stream, so the file does not depend on how it is written.
 */
final class InitRandomCommand {
    static final Map<String, String> VALUED = Args.options(
            "config", "llama-110m (dim 768, 12 layers, 12 heads, FFN 2048, vocab 32000, tied), llama3-8b, llama3-70b, or a config.json",
            "dtype", "type of the matrices: f32, f16, bf16, q8_0, q4_0",
            "seed", "random seed (default 1)",
            "out", "GGUF file to write");
    static final Map<String, String> FLAGS = Args.options("help", "show options");

    int run(String[] argv) throws java.io.IOException {
        Args args = new Args("init-random", argv, VALUED, FLAGS);
        if (args.flag("help")) return Help.print("init-random --config NAME|FILE --dtype TYPE --seed S --out FILE.gguf", VALUED, FLAGS);
        ModelConfig c = preset(args, args.required("config"));
        DType type = ConvertCommand.parseType(args, args.required("dtype"));
        long seed = args.longValue("seed", 1);
        Path out = Path.of(args.required("out"));
        long t0 = System.nanoTime();
        GgufModelWriter.write(out, c, type, syntheticVocab(c.vocabSize()), (name, first, count, cols, dst) -> fill(name, seed, first, count, cols, dst), "random-" + args.required("config"));
        System.err.printf("init-random: wrote %s (%s, %d parameters, %.1f MiB) in %.1f s%n", out, type, c.matrixParameters(),
                java.nio.file.Files.size(out) / 1048576.0, (System.nanoTime() - t0) / 1e9);
        return 0;
    }

    private static void fill(String name, long seed, long first, int count, int cols, float[] dst) {
        if (name.endsWith("norm.weight")) {
            java.util.Arrays.fill(dst, 0, count * cols, 1f);
            return;
        }
        long nameHash = name.hashCode() * 0x9E3779B97F4A7C15L;
        for (int r = 0; r < count; r++) {
            SplittableRandom rnd = new SplittableRandom(seed ^ nameHash ^ ((first + r) * 0xBF58476D1CE4E5B9L));
            for (int i = 0; i < cols; i++) dst[r * cols + i] = (float) (rnd.nextGaussian() * 0.02);
        }
    }

    static ModelConfig preset(Args args, String name) {
        return switch (name) {
            case "llama-110m" -> llama(768, 2048, 12, 12, 12, 32000, 1024, 10000, 1e-5f, true); // stories110M's shape, shared classifier
            case "llama3-8b" -> llama(4096, 14336, 32, 32, 8, 128256, 8192, 500000, 1e-5f, false);
            case "llama3-70b" -> llama(8192, 28672, 80, 64, 8, 128256, 8192, 500000, 1e-5f, false);
            default -> {
                Path p = Path.of(name);
                if (!java.nio.file.Files.isRegularFile(p)) {
                    throw args.usage("--config '" + name + "' is neither a preset (llama-110m, llama3-8b, llama3-70b) nor a config.json file");
                }
                yield HfConfig.read(p);
            }
        };
    }

    private static ModelConfig llama(int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int ctx, double theta, float eps, boolean tied) {
        int headDim = dim / heads;
        return new ModelConfig("llama", dim, hidden, layers, heads, kvHeads, headDim, vocab, ctx, eps, Rope.Style.INTERLEAVED,
                theta, Rope.invFreq(headDim, theta), tied, false, 0, 1, 2);
    }

    /** A SentencePiece-style vocabulary of any size: unk, BOS, EOS, the 256 byte pieces, then numbered pieces. */
    static GgufVocab syntheticVocab(int size) {
        String[] tokens = new String[size];
        float[] scores = new float[size];
        int[] types = new int[size];
        tokens[0] = "<unk>"; types[0] = 2;
        tokens[1] = "<s>"; types[1] = 3;
        tokens[2] = "</s>"; types[2] = 3;
        for (int b = 0; b < 256 && 3 + b < size; b++) {
            tokens[3 + b] = String.format("<0x%02X>", b);
            types[3 + b] = 6;
        }
        for (int i = 259; i < size; i++) {
            tokens[i] = "\u2581t" + i;
            scores[i] = -i;
            types[i] = 1;
        }
        return new GgufVocab("llama", tokens, scores, types, null, null, 1, 2, true);
    }
}
