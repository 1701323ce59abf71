package dev.tandem.server.cli;

import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.engine.spec.SpecDecodeStats;
import dev.tandem.engine.spec.SpeculativeConfig;

import java.io.PrintStream;
import java.nio.file.Path;

/**
 * --draft-model / --draft ngram / --num-speculative-tokens / --spec-adaptive, shared by generate, serve and bench.
 * Owns the loaded draft model; closing it unmaps the draft's files.
 */
final class SpeculationOptions implements AutoCloseable {
    static final String[] VALUED = {
            "draft-model", "speculative decoding with this draft model (same tokenizer as --model)",
            "draft", "drafter: 'model' (with --draft-model) or 'ngram' (prompt lookup, no second model)",
            "num-speculative-tokens", "draft tokens per step k, or the largest k with --spec-adaptive (default 4)",
            "ngram-min", "--draft ngram: shortest suffix to look up (default 2)",
            "ngram-max", "--draft ngram: longest suffix to look up (default 4)"};
    static final String[] FLAGS = {"spec-adaptive", "choose k per sequence from its running acceptance rate"};

    private final SpeculativeConfig config;
    private final Model draft;

    private SpeculationOptions(SpeculativeConfig config, Model draft) {
        this.config = config;
        this.draft = draft;
    }

    /** The speculation asked for, or one whose {@link #config()} is null when none was. */
    static SpeculationOptions open(Args args, Model target) {
        String kind = args.string("draft", args.has("draft-model") ? "model" : null);
        if (kind == null) {
            if (args.has("num-speculative-tokens") || args.flag("spec-adaptive") || args.has("ngram-min") || args.has("ngram-max")) {
                throw args.usage("--num-speculative-tokens, --spec-adaptive and --ngram-min/max need --draft-model PATH or --draft ngram");
            }
            return new SpeculationOptions(null, null);
        }
        int k = args.integer("num-speculative-tokens", 4);
        if (k < 1 || k > SpeculativeConfig.MAX_SPECULATIVE_TOKENS) {
            throw args.usage("--num-speculative-tokens must be in 1.." + SpeculativeConfig.MAX_SPECULATIVE_TOKENS + ", got " + k);
        }
        boolean adaptive = args.flag("spec-adaptive");
        switch (kind) {
            case "ngram" -> {
                if (args.has("draft-model")) throw args.usage("--draft ngram takes no --draft-model");
                SpeculativeConfig c = SpeculativeConfig.ngram(k).withAdaptive(adaptive);
                try {
                    c = new SpeculativeConfig(null, k, adaptive, args.integer("ngram-min", c.ngramMin()), args.integer("ngram-max", c.ngramMax()),
                            c.verifyCostPerToken());
                } catch (IllegalArgumentException e) {
                    throw args.usage("--ngram-min / --ngram-max: " + e.getMessage());
                }
                return new SpeculationOptions(c, null);
            }
            case "model" -> {
                if (!args.has("draft-model")) throw args.usage("--draft model needs --draft-model PATH");
                Model draft = ModelLoader.load(Path.of(args.string("draft-model", null)), null);
                if (draft.config().vocabSize() != target.config().vocabSize()) {
                    draft.close();
                    throw args.usage("--draft-model " + args.string("draft-model", null) + " has a vocabulary of " + draft.config().vocabSize()
                            + " tokens, --model one of " + target.config().vocabSize() + ": the draft must share the target's tokenizer");
                }
                return new SpeculationOptions(SpeculativeConfig.draftModel(draft, k).withAdaptive(adaptive), draft);
            }
            default -> throw args.usage("--draft '" + kind + "' is not a drafter (use 'model' with --draft-model, or 'ngram')");
        }
    }

    /** Null when speculation is off. */
    SpeculativeConfig config() { return config; }

    /** The stderr lines `generate` prints after a speculative run. */
    static void summary(PrintStream err, SpecDecodeStats s) {
        err.printf("speculative: %s; %d drafts, %d draft tokens, %d accepted (acceptance rate %.3f, alpha %.3f), mean accepted length %.2f%n",
                s.drafter(), s.drafts(), s.draftTokens(), s.acceptedTokens(), s.acceptanceRate(), s.alpha(), s.meanAcceptanceLength());
        StringBuilder pos = new StringBuilder();
        for (int i = 0; i < s.draftedPerPosition().length && s.draftedPerPosition()[i] > 0; i++) {
            pos.append(String.format("%s%.2f", i == 0 ? "" : " ", s.acceptanceAt(i)));
        }
        err.printf("speculative: acceptance by position [%s]; draft %.1f ms, verify %.1f ms over %d target passes%n",
                pos, s.draftNanos() / 1e6, s.verifyNanos() / 1e6, s.verifySteps());
    }

    @Override
    public void close() {
        if (draft != null) draft.close();
    }
}
