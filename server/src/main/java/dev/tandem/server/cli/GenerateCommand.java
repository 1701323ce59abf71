package dev.tandem.server.cli;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.generate.GenerationStats;
import dev.tandem.core.generate.Generator;
import dev.tandem.core.model.DecoderModel;
import dev.tandem.core.model.Model;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.core.tokenizer.StreamDecoder;

import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineConfig;
import dev.tandem.engine.FinishReason;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.TokenEvent;
import dev.tandem.engine.TokenListener;
import dev.tandem.engine.exec.ModelRunner;
import dev.tandem.engine.spec.SpeculativeConfig;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

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
            BackendOptions.OPTIONS[4], BackendOptions.OPTIONS[5],
            SpeculationOptions.VALUED[0], SpeculationOptions.VALUED[1], SpeculationOptions.VALUED[2], SpeculationOptions.VALUED[3],
            SpeculationOptions.VALUED[4], SpeculationOptions.VALUED[5], SpeculationOptions.VALUED[6], SpeculationOptions.VALUED[7],
            SpeculationOptions.VALUED[8], SpeculationOptions.VALUED[9]);
    static final Map<String, String> FLAGS = Args.options(
            "ignore-eos", "keep generating past the end-of-sequence token",
            SpeculationOptions.FLAGS[0], SpeculationOptions.FLAGS[1],
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
             Model model = ModelLoader.load(modelPath, tokenizer);
             SpeculationOptions spec = SpeculationOptions.open(args, model)) {
            int context = Math.min(model.config().contextLength(), args.integer("ctx-size", model.config().contextLength()));
            if (spec.config() != null) return speculative(args, model, backend, spec.config(), prompt, maxTokens, params, t0);
            DecoderModel decoderModel = DecoderModel.create(model.config(), model.weights(), backend, Math.min(512, context), 1);
            double loadSeconds = (System.nanoTime() - t0) / 1e9;
            int[] ids = model.tokenizer().encode(prompt, true);
            if (ids.length == 0) throw new IllegalArgumentException("the prompt encodes to no tokens and the tokenizer has no BOS to start from");
            err.printf("load: %s (%s), %.2f s%n", modelPath, model.format(), loadSeconds);
            StreamDecoder decoder = new StreamDecoder(model.tokenizer()).after(ids[ids.length - 1]);
            PrintStream out = System.out;
            Generator generator = new Generator(decoderModel, context);
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

    /**
     * Speculative generation runs through the serving engine (one request), where drafting and verification live;
     * the output is streamed the same way and stderr adds the speculation summary.
     */
    private static int speculative(Args args, Model model, Backend backend, SpeculativeConfig spec, String prompt, int maxTokens,
                                   SamplingParams params, long t0) {
        if (args.has("ctx-size")) throw args.usage("--ctx-size is not supported with speculative decoding (the model's context is used)");
        int context = model.config().contextLength();
        long kvBytes = ModelRunner.kvBytesPerToken(model.config()) * (context + 2L * EngineConfig.DEFAULT.blockSize());
        EngineConfig config = EngineConfig.DEFAULT.withMaxNumSeqs(1).withKvCacheBytes(kvBytes).withPrefixCaching(false);
        PrintStream err = System.err, out = System.out;
        try (Engine engine = new Engine(model, backend, config, spec)) {
            int[] ids = model.tokenizer().encode(prompt, true);
            if (ids.length == 0) throw new IllegalArgumentException("the prompt encodes to no tokens and the tokenizer has no BOS to start from");
            int max = Math.min(maxTokens, context - ids.length);
            if (max < 0) throw new IllegalArgumentException("prompt of " + ids.length + " tokens does not fit the context of " + context + " tokens");
            err.printf("load: %s (%s), %.2f s; speculative: %s, %s%n", args.string("model", null), model.format(), (System.nanoTime() - t0) / 1e9,
                    engine.speculator().drafter().name(), spec.describe());
            StreamDecoder decoder = new StreamDecoder(model.tokenizer()).after(ids[ids.length - 1]);
            CompletableFuture<FinishReason> done = new CompletableFuture<>();
            long[] firstToken = {0};
            int[] generated = {0};
            long start = System.nanoTime();
            engine.submit(new GenerationRequest(ids, max, params, args.flag("ignore-eos"), -1), new TokenListener() {
                public void onToken(TokenEvent t) {
                    if (generated[0]++ == 0) firstToken[0] = System.nanoTime();
                    out.print(decoder.next(t.token()));
                    out.flush();
                }

                public void onFinish(FinishReason reason, int promptTokens, int generatedTokens, int cached) { done.complete(reason); }

                public void onError(Throwable error) { done.completeExceptionally(error); }
            });
            FinishReason reason = done.join();
            long end = System.nanoTime();
            out.print(decoder.flush());
            if (System.console() != null) out.println();
            out.flush();
            double prefill = Math.max(1e-9, (firstToken[0] == 0 ? end : firstToken[0]) - start) / 1e9;
            double decode = Math.max(1e-9, end - (firstToken[0] == 0 ? end : firstToken[0])) / 1e9;
            err.printf("prompt: %d tokens, %.1f tokens/s%n", ids.length, ids.length / prefill);
            err.printf("generated: %d tokens, %.1f tokens/s (stop: %s)%n", generated[0], Math.max(0, generated[0] - 1) / decode,
                    reason == FinishReason.STOP ? "eos" : reason.openAi());
            SpeculationOptions.summary(err, engine.stats().speculative());
        }
        return 0;
    }
}
