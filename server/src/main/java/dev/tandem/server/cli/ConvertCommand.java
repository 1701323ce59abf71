package dev.tandem.server.cli;

import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.format.gguf.GgufModelWriter;
import dev.tandem.core.format.gguf.GgufVocab;
import dev.tandem.core.model.Model;
import dev.tandem.core.tensor.DType;

import java.nio.file.Path;
import java.util.Map;

/** `tandem convert --model PATH --to gguf --type f32|f16|q8_0|q4_0 --out FILE`. */
final class ConvertCommand {
    static final Map<String, String> VALUED = Args.options(
            "model", "model folder or file to read",
            "to", "output format: gguf",
            "type", "type of the matrices: f32, f16, bf16, q8_0, q4_0 (norms stay f32)",
            "out", "file to write",
            "tokenizer", "tokenizer file instead of the model's own");
    static final Map<String, String> FLAGS = Args.options("help", "show options");

    int run(String[] argv) throws java.io.IOException {
        Args args = new Args("convert", argv, VALUED, FLAGS);
        if (args.flag("help")) return Help.print("convert --model PATH --to gguf --type TYPE --out FILE", VALUED, FLAGS);
        String to = args.string("to", "gguf");
        if (!to.equals("gguf")) throw args.usage("--to '" + to + "' is not supported (supported: gguf)");
        DType type = parseType(args, args.required("type"));
        Path out = Path.of(args.required("out"));
        Path tokenizer = args.has("tokenizer") ? Path.of(args.string("tokenizer", null)) : null;
        long t0 = System.nanoTime();
        try (Model model = ModelLoader.load(Path.of(args.required("model")), tokenizer)) {
            GgufModelWriter.write(out, model.config(), type, GgufVocab.of(model.tokenizer()), GgufModelWriter.sourceOf(model.weights()),
                    Path.of(args.required("model")).getFileName().toString());
        }
        System.err.printf("convert: wrote %s (%s, %.1f MiB) in %.1f s%n", out, type, java.nio.file.Files.size(out) / 1048576.0,
                (System.nanoTime() - t0) / 1e9);
        return 0;
    }

    static DType parseType(Args args, String s) {
        return switch (s.toLowerCase()) {
            case "f32" -> DType.F32;
            case "f16" -> DType.F16;
            case "bf16" -> DType.BF16;
            case "q8_0" -> DType.Q8_0;
            case "q4_0" -> DType.Q4_0;
            default -> throw args.usage("--type '" + s + "' is not supported (supported: f32, f16, bf16, q8_0, q4_0)");
        };
    }
}
