package dev.tandem.server.cli;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.generate.GenerationStats;
import dev.tandem.core.generate.Generator;
import dev.tandem.core.model.LlamaModel;
import dev.tandem.core.model.Model;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.core.tokenizer.StreamDecoder;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Map;

/** `tandem generate`: stdout carries only the continuation, streamed; stderr the timings. */
final class GenerateCommand {
    static final Map<String, String> VALUED = Args.options(
            "model", "model folder (Hugging Face) or file (GGUF, llama2.c .bin)",
            "prompt", "text to continue (default: empty, just BOS)",
            "max-tokens", "most tokens to generate (default 256)",
            "temperature", "0 is greedy (default 0.8)",
            "top-k", "keep the k most likely tokens, 0 = all (default 40)",
            "top-p", "nucleus sampling mass (default 0.95)",
            "min-p", "drop tokens below p * the top probability (default 0.05)",
            "repeat-penalty", "penalty for tokens in the last 64 (default 1.0 = off)",
            "seed", "random seed (default: random)",
            "tokenizer", "tokenizer file (llama2.c tokenizer.bin, tokenizer.model or tokenizer.json)",
            "ctx-size", "context length to allocate (default: the model's)",
            BackendOptions.OPTIONS[0], BackendOptions.OPTIONS[1], BackendOptions.OPTIONS[2], BackendOptions.OPTIONS[3],
            BackendOptions.OPTIONS[4], BackendOptions.OPTIONS[5]);
    static final Map<String, String> FLAGS = Args.options(
            "ignore-eos", "keep generating past the end-of-sequence token",
            "help", "show options");

    int run(String[] argv) throws java.io.IOException {
        Args args = new Args("generate", argv, VALUED, FLAGS);
        if (args.flag("help")) return Help.print("generate --model PATH --prompt TEXT [options]", VALUED, FLAGS);
        Path modelPath = Path.of(args.required("model"));
        String prompt = args.string("prompt", "");
        int maxTokens = args.integer("max-tokens", 256);
        if (maxTokens < 0) throw args.usage("--max-tokens must be >= 0, got " + maxTokens);
        SamplingParams params;
        try {
            params = new SamplingParams(args.number("temperature", 0.8f), args.integer("top-k", 40), args.number("top-p", 0.95f),
                    args.number("min-p", 0.05f), args.number("repeat-penalty", 1f), 64, 0f, 0f,
                    args.longValue("seed", System.nanoTime()));
        } catch (IllegalArgumentException e) {
            throw args.usage(e.getMessage());
        }
        Path tokenizer = args.has("tokenizer") ? Path.of(args.string("tokenizer", null)) : null;
        PrintStream err = System.err;
        long t0 = System.nanoTime();
        try (Backend backend = BackendOptions.open(args);
             Model model = ModelLoader.load(modelPath, tokenizer)) {
            int context = Math.min(model.config().contextLength(), args.integer("ctx-size", model.config().contextLength()));
            LlamaModel llama = new LlamaModel(model.config(), model.weights(), backend, Math.min(512, context), 1);
            double loadSeconds = (System.nanoTime() - t0) / 1e9;
            int[] ids = model.tokenizer().encode(prompt, true);
            if (ids.length == 0) throw new IllegalArgumentException("the prompt encodes to no tokens and the tokenizer has no BOS to start from");
            err.printf("load: %s (%s), %.2f s%n", modelPath, model.format(), loadSeconds);
            StreamDecoder decoder = new StreamDecoder(model.tokenizer()).after(ids[ids.length - 1]);
            PrintStream out = System.out;
            Generator generator = new Generator(llama, context);
            GenerationStats stats = generator.generate(ids, maxTokens, params, !args.flag("ignore-eos"), model.tokenizer().eos(), token -> {
                out.print(decoder.next(token));
                out.flush();
                return true;
            });
            out.print(decoder.flush());
            if (System.console() != null) out.println(); // keep piped output exactly the continuation
            out.flush();
            err.printf("prompt: %d tokens, %.1f tokens/s%n", stats.promptTokens(), stats.prefillTokensPerSecond());
            err.printf("generated: %d tokens, %.1f tokens/s (stop: %s)%n", stats.generatedTokens(), stats.decodeTokensPerSecond(), stats.stopReason());
        }
        return 0;
    }
}
