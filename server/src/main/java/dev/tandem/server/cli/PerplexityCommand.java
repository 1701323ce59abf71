package dev.tandem.server.cli;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.eval.Perplexity;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.quant.GroupQuant4;
import dev.tandem.core.quant.WeightCompression;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * `tandem perplexity --model PATH --text FILE [--compress-weights [--weight-range min-max]] [--compress-kv] [--max-tokens N] [--context N]`:
 * the model's perplexity on a text file (one document: BOS, text, EOS), in windows of --context tokens as
 * {@link Perplexity} describes; with FlexGen's 4-bit group-wise compression of the layer matrices and / or the
 * KV cache, to measure what compression costs.
 */
final class PerplexityCommand {
    static final Map<String, String> VALUED = Args.options(
            "model", "model folder or file",
            "text", "UTF-8 text file to score",
            "max-tokens", "score only the first N predicted tokens (default: all)",
            "context", "tokens per window (default: the model's context length)",
            "weight-range", "with --compress-weights, how each group's range is chosen: least-squares (default) or min-max (FlexGen's)",
            BackendOptions.OPTIONS[0], BackendOptions.OPTIONS[1], BackendOptions.OPTIONS[2], BackendOptions.OPTIONS[3],
            BackendOptions.OPTIONS[4], BackendOptions.OPTIONS[5]);
    static final Map<String, String> FLAGS = Args.options(
            "compress-weights", "layer matrices through 4-bit group-wise quantization (group 64 along the output channel)",
            "compress-kv", "KV cache in 4 bits (group 64 along head_dim; CPU backend)",
            "help", "show options");

    int run(String[] argv) throws IOException {
        Args args = new Args("perplexity", argv, VALUED, FLAGS);
        if (args.flag("help")) {
            return Help.print("perplexity --model PATH --text FILE [--compress-weights [--weight-range least-squares|min-max]] [--compress-kv] [--max-tokens N] [--context N]", VALUED, FLAGS);
        }
        Path textFile = Path.of(args.required("text"));
        if (!Files.isRegularFile(textFile)) throw args.usage("--text " + textFile + ": no such file");
        long maxTokens = args.longValue("max-tokens", Long.MAX_VALUE);
        if (maxTokens <= 0) throw args.usage("--max-tokens must be positive, got " + maxTokens);
        KvLayout.Format kv = args.flag("compress-kv") ? KvLayout.Format.GQ4 : KvLayout.Format.F32;
        GroupQuant4.Range range = switch (args.string("weight-range", "least-squares")) {
            case "least-squares" -> GroupQuant4.Range.LEAST_SQUARES;
            case "min-max" -> GroupQuant4.Range.MIN_MAX;
            default -> throw args.usage("--weight-range must be least-squares or min-max, got " + args.string("weight-range", ""));
        };
        try (Backend backend = BackendOptions.open(args); Model model = load(args, range)) {
            int context = args.integer("context", model.config().contextLength());
            long t0 = System.nanoTime();
            int[] stream = Perplexity.documentTokens(model.tokenizer(), Files.readString(textFile));
            Perplexity.Result r = Perplexity.evaluate(model, backend, stream, context, maxTokens, kv);
            double s = (System.nanoTime() - t0) / 1e9;
            System.out.printf("model %s (%s)%n", args.required("model"), model.format());
            System.out.printf("text %s: %d tokens; context %d; weights %s; KV cache %s; backend %s%n", textFile, stream.length, context,
                    args.flag("compress-weights") ? "GQ4 (" + range.name().toLowerCase(java.util.Locale.ROOT).replace('_', '-') + " range)" : "as stored", kv, backend.name());
            System.out.printf("predicted %d tokens: mean NLL %.5f nats, perplexity %.4f (%.1f s, %.0f tokens/s)%n",
                    r.tokens(), r.meanNll(), r.perplexity(), s, r.tokens() / s);
        }
        return 0;
    }

    /** The model, its layer matrices through GQ4 with --compress-weights (closing it closes both). */
    private static Model load(Args args, GroupQuant4.Range range) {
        Model loaded = ModelLoader.load(Path.of(args.required("model")), null);
        if (!args.flag("compress-weights")) return loaded;
        try {
            return WeightCompression.roundTrip(loaded, range);
        } catch (RuntimeException e) {
            loaded.close();
            throw e;
        }
    }
}
