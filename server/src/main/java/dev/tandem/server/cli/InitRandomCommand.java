package dev.tandem.server.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tandem.core.backend.Rope;
import dev.tandem.core.format.gguf.GgufModelWriter;
import dev.tandem.core.format.gguf.GgufVocab;
import dev.tandem.core.format.hf.HfConfig;
import dev.tandem.core.format.hf.HfModelWriter;
import dev.tandem.core.format.hf.RandomHfModel;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.OptShapes;
import dev.tandem.core.model.RandomWeights;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tokenizer.SyntheticTokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * `tandem init-random`: a seeded random-weight model at a real shape, for benchmarks (weights normal(0, 0.02),
 * norms 1; see {@link RandomWeights} for the generator). Every value is a function of (seed, tensor, row, column),
 * so the files do not depend on how, or on how many threads, they are written. A GGUF file, or a Hugging Face
 * folder (config.json, safetensors, a synthetic byte-level tokenizer.json) that transformers loads too.
 */
final class InitRandomCommand {
    static final Map<String, String> VALUED = Args.options(
            "config", "llama-110m (dim 768, 12 layers, 12 heads, FFN 2048, vocab 32000, tied), llama3-8b, llama3-70b, "
                    + "opt-tiny (dim 64, 2 layers, for tests), opt-125m, opt-1.3b, opt-2.7b, opt-6.7b, opt-13b, opt-30b, opt-66b, opt-175b, "
                    + "or a config.json (LlamaForCausalLM or OPTForCausalLM)",
            "shape", "the same as --config",
            "architecture", "llama or opt: checks that the preset or config.json is of this architecture",
            "dtype", "type of the matrices: f32, f16, bf16 (Hugging Face and GGUF), q8_0, q4_0 (GGUF only)",
            "seed", "random seed (default 1)",
            "std", "standard deviation of matrices, embeddings and biases in the Hugging Face layout (default 0.02)",
            "out", "FILE.gguf, or a folder for the Hugging Face layout",
            "format", "gguf or hf (default: gguf for a .gguf path, hf otherwise)",
            "threads", "threads generating the Hugging Face weights (default: all cores)");
    static final Map<String, String> FLAGS = Args.options("help", "show options");

    int run(String[] argv) throws java.io.IOException {
        Args args = new Args("init-random", argv, VALUED, FLAGS);
        if (args.flag("help")) {
            return Help.print("init-random --config NAME|FILE --dtype TYPE --seed S --out FILE.gguf|DIR [--format gguf|hf] [--architecture llama|opt]", VALUED, FLAGS);
        }
        String configName = args.string("config", args.string("shape", null));
        if (configName == null) throw args.usage("--config (or --shape) is required");
        ModelConfig c = preset(args, configName);
        String arch = args.string("architecture", c.isOpt() ? ModelConfig.OPT : "llama");
        if (!arch.equals(c.isOpt() ? ModelConfig.OPT : "llama")) {
            throw args.usage("--architecture " + arch + " but '" + configName + "' is " + c.architecture());
        }
        DType type = ConvertCommand.parseType(args, args.required("dtype"));
        long seed = args.longValue("seed", 1);
        Path out = Path.of(args.required("out"));
        String format = args.string("format", out.getFileName().toString().toLowerCase().endsWith(".gguf") ? "gguf" : "hf");
        long t0 = System.nanoTime();
        switch (format) {
            case "gguf" -> {
                if (c.isOpt()) throw args.usage("OPT models are written in the Hugging Face layout only (--format hf, or an --out folder)");
                GgufModelWriter.write(out, c, type, syntheticVocab(c.vocabSize()),
                        (name, first, count, cols, dst) -> RandomWeights.rows(seed, name, first, count, cols, dst), "random-" + configName);
                System.err.printf("init-random: wrote %s (%s, %d parameters, %.1f MiB) in %.1f s%n", out, type, c.matrixParameters(),
                        Files.size(out) / 1048576.0, (System.nanoTime() - t0) / 1e9);
            }
            case "hf" -> {
                if (type != DType.F32 && type != DType.F16 && type != DType.BF16) {
                    throw args.usage("--dtype " + args.required("dtype") + " is GGUF-only; the Hugging Face layout takes bf16, f16 or f32");
                }
                if (Files.isRegularFile(out)) throw args.usage("--out " + out + " is a file; the Hugging Face layout needs a folder (or name it .gguf)");
                int threads = args.integer("threads", Runtime.getRuntime().availableProcessors());
                if (threads < 1) throw args.usage("--threads must be at least 1, got " + threads);
                float std = args.number("std", RandomWeights.STD);
                if (!(std > 0)) throw args.usage("--std must be positive, got " + std);
                HfModelWriter.Written w = RandomHfModel.write(out, c, type, ropeScaling(configName), seed, std, threads);
                double s = (System.nanoTime() - t0) / 1e9;
                System.err.printf("init-random: wrote %s (%s, %d parameters, %d safetensors file%s, %.2f GB) in %.2f s: %.2f GB/s with %d threads"
                                + " (thread time: %.2f s generating, %.2f s writing)%n",
                        out, type, c.matrixParameters(), w.files().size(), w.files().size() == 1 ? "" : "s", w.bytes() / 1e9, s,
                        w.bytes() / 1e9 / s, threads, w.computeNanos() / 1e9, w.writeNanos() / 1e9);
            }
            default -> throw args.usage("--format must be gguf or hf, got '" + format + "'");
        }
        return 0;
    }

    /** A config.json's RoPE scaling block (rope_scaling, or transformers 5's rope_parameters), to write back; null for presets. */
    private static JsonNode ropeScaling(String configName) throws java.io.IOException {
        Path p = Path.of(configName);
        if (!Files.isRegularFile(p)) return null;
        JsonNode c = new ObjectMapper().readTree(Files.readString(p));
        JsonNode s = c.path("rope_scaling");
        if (s.isObject()) return s;
        JsonNode params = c.path("rope_parameters");
        String type = params.path("rope_type").asText("default");
        if (!params.isObject() || type.equals("default")) return null;
        ObjectNode copy = params.deepCopy();
        copy.remove("rope_theta");
        return copy;
    }

    static ModelConfig preset(Args args, String name) {
        return switch (name) {
            case "llama-110m" -> llama(768, 2048, 12, 12, 12, 32000, 1024, 10000, 1e-5f, true, 1, 2); // stories110M's shape, shared classifier
            case "llama3-8b" -> llama(4096, 14336, 32, 32, 8, 128256, 8192, 500000, 1e-5f, false, 128000, 128001);
            case "llama3-70b" -> llama(8192, 28672, 80, 64, 8, 128256, 8192, 500000, 1e-5f, false, 128000, 128001);
            default -> {
                if (OptShapes.of(name) != null) yield OptShapes.of(name);
                Path p = Path.of(name);
                if (!java.nio.file.Files.isRegularFile(p)) {
                    throw args.usage("--config '" + name + "' is neither a preset (llama-110m, llama3-8b, llama3-70b, "
                            + String.join(", ", OptShapes.names()) + ") nor a config.json file");
                }
                yield HfConfig.read(p);
            }
        };
    }

    private static ModelConfig llama(int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int ctx, double theta, float eps, boolean tied, int bos, int eos) {
        int headDim = dim / heads;
        return new ModelConfig("llama", dim, hidden, layers, heads, kvHeads, headDim, vocab, ctx, eps, Rope.Style.INTERLEAVED,
                theta, Rope.invFreq(headDim, theta), tied, false, 0, bos, eos);
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
