package dev.tandem.server.cli;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.cluster.EmbeddedCluster;
import dev.tandem.cluster.policy.ClusterDesign;
import dev.tandem.cluster.router.Router;
import dev.tandem.engine.Engine;
import dev.tandem.engine.GenerationService;
import dev.tandem.engine.EngineConfig;
import dev.tandem.server.http.OpenAiServer;
import dev.tandem.server.http.ServerConfig;
import sun.misc.Signal;
import sun.misc.SignalHandler;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * `tandem serve`: the OpenAI-compatible HTTP server. Prints the URL on stderr when it is ready; SIGTERM or SIGINT
 * stop it gracefully (running requests finish within --shutdown-timeout, then are cancelled) and it exits 0.
 */
final class ServeCommand {
    static final Map<String, String> VALUED = Args.options(
            "model", "model folder (Hugging Face) or file (GGUF, llama2.c .bin)",
            "host", "address to bind (default 127.0.0.1, this machine only; 0.0.0.0 for all)",
            "port", "TCP port (default 8000; 0 picks a free one)",
            "api-key", "require 'Authorization: Bearer KEY' (health and metrics stay open)",
            "served-model-name", "model name for the API (default: the model's folder or file name)",
            "max-num-seqs", "most sequences running at once (default " + EngineConfig.DEFAULT.maxNumSeqs() + ")",
            "max-num-batched-tokens", "token budget of one engine step (default " + EngineConfig.DEFAULT.maxNumBatchedTokens() + ")",
            "kv-cache-memory", "memory for the paged KV cache, e.g. 512M or 2G (default " + (EngineConfig.DEFAULT.kvCacheBytes() >> 20) + "M)",
            "max-queue", "most requests waiting to start; more get 429 (default " + EngineConfig.DEFAULT.maxQueue() + ")",
            "max-body", "largest request body, e.g. 4M (default 4M; larger get 413)",
            "shutdown-timeout", "seconds running requests may take to finish on SIGTERM (default 30)",
            "tokenizer", "tokenizer file (llama2.c tokenizer.bin, tokenizer.model or tokenizer.json)",
            "design", "run a whole cluster in this JVM: mixed (colocated), split (prompt and token pools) or split-mixed-pool",
            "prompt-workers", "prompt workers of the cluster (default 1; with --design mixed, the workers are all mixed)",
            "token-workers", "token workers of the cluster (default 1); --threads is split between all workers",
            BackendOptions.OPTIONS[0], BackendOptions.OPTIONS[1], BackendOptions.OPTIONS[2], BackendOptions.OPTIONS[3],
            BackendOptions.OPTIONS[4], BackendOptions.OPTIONS[5],
            SpeculationOptions.VALUED[0], SpeculationOptions.VALUED[1], SpeculationOptions.VALUED[2], SpeculationOptions.VALUED[3],
            SpeculationOptions.VALUED[4], SpeculationOptions.VALUED[5], SpeculationOptions.VALUED[6], SpeculationOptions.VALUED[7],
            SpeculationOptions.VALUED[8], SpeculationOptions.VALUED[9]);
    static final Map<String, String> FLAGS = Args.options(
            "no-prefix-caching", "do not reuse the KV cache of identical prompt prefixes",
            SpeculationOptions.FLAGS[0], SpeculationOptions.FLAGS[1],
            "help", "show options");

    /** Held so that the level set on it is not lost when the logger is garbage-collected. */
    private static final Logger HELIDON_LOG = Logger.getLogger("io.helidon");

    int run(String[] argv) throws InterruptedException {
        Args args = new Args("serve", argv, VALUED, FLAGS);
        if (args.flag("help")) return Help.print("serve --model PATH [options]", VALUED, FLAGS);
        Path modelPath = Path.of(args.required("model"));
        EngineConfig engineConfig = engineConfig(args);
        ServerConfig serverConfig = serverConfig(args, modelPath, 8000);
        Path tokenizer = args.has("tokenizer") ? Path.of(args.string("tokenizer", null)) : null;
        String name = serverConfig.servedModelName();

        ClusterDesign design = null;
        int promptWorkers = args.integer("prompt-workers", 1), tokenWorkers = args.integer("token-workers", 1);
        if (args.has("design")) {
            try {
                design = ClusterDesign.parse(args.string("design", null));
            } catch (IllegalArgumentException e) {
                throw args.usage(e.getMessage());
            }
            if (promptWorkers < 1 || tokenWorkers < 1) throw args.usage("--prompt-workers and --token-workers must be >= 1");
        } else if (args.has("prompt-workers") || args.has("token-workers")) {
            throw args.usage("--prompt-workers and --token-workers need --design");
        }

        long t0 = System.nanoTime();
        try (Model model = ModelLoader.load(modelPath, tokenizer)) {
            if (design == null) {
                try (Backend backend = BackendOptions.open(args);
                     SpeculationOptions spec = SpeculationOptions.open(args, model);
                     Engine engine = new Engine(model, backend, engineConfig, spec.config())) {
                    String shape = spec.config() == null ? ""
                            : ", speculative: " + engine.speculator().drafter().name() + ", " + spec.config().describe();
                    return serve(engine, serverConfig, ready(name, model, engine.contextLength(), shape, t0));
                }
            }
            int workers = promptWorkers + tokenWorkers;
            Router.Config routerConfig = Router.Config.of(design).withMaxQueue(engineConfig.maxQueue());
            try (SpeculationOptions spec = SpeculationOptions.open(args, model);
                 EmbeddedCluster cluster = EmbeddedCluster.start(model, routerConfig, promptWorkers, tokenWorkers, engineConfig,
                    i -> BackendOptions.open(args, workers, i), design.pools(), spec.config())) {
                String shape = (design == ClusterDesign.MIXED ? workers + " mixed workers"
                        : promptWorkers + " prompt + " + tokenWorkers + " token workers")
                        + (spec.config() == null ? "" : ", speculative on the decoding workers (" + spec.config().describe() + ")");
                return serve(cluster.router(), serverConfig, ready(name, model, model.config().contextLength(), ", " + design.flag() + ": " + shape, t0));
            }
        }
    }

    /** The engine's limits from the shared options. */
    static EngineConfig engineConfig(Args args) {
        try {
            return EngineConfig.DEFAULT
                    .withMaxNumSeqs(args.integer("max-num-seqs", EngineConfig.DEFAULT.maxNumSeqs()))
                    .withMaxNumBatchedTokens(args.integer("max-num-batched-tokens", EngineConfig.DEFAULT.maxNumBatchedTokens()))
                    .withKvCacheBytes(args.bytes("kv-cache-memory", EngineConfig.DEFAULT.kvCacheBytes()))
                    .withMaxQueue(args.integer("max-queue", EngineConfig.DEFAULT.maxQueue()))
                    .withPrefixCaching(!args.flag("no-prefix-caching"));
        } catch (IllegalArgumentException e) {
            throw args.usage(e.getMessage());
        }
    }

    /** The HTTP server's settings from the shared options, on {@code defaultPort} unless --port says otherwise. */
    static ServerConfig serverConfig(Args args, Path modelPath, int defaultPort) {
        return serverConfig(args, modelPath.toAbsolutePath().normalize().getFileName().toString(), defaultPort);
    }

    /** @param defaultName the served model name unless --served-model-name gives one */
    static ServerConfig serverConfig(Args args, String defaultName, int defaultPort) {
        String name = args.string("served-model-name", defaultName);
        try {
            int timeout = args.integer("shutdown-timeout", 30);
            if (timeout < 0) throw new IllegalArgumentException("--shutdown-timeout must be >= 0, got " + timeout);
            return new ServerConfig(args.string("host", "127.0.0.1"), args.integer("port", defaultPort),
                    Optional.ofNullable(args.string("api-key", null)), name, args.bytes("max-body", ServerConfig.DEFAULT_MAX_BODY),
                    Duration.ofSeconds(timeout));
        } catch (IllegalArgumentException e) {
            throw args.usage(e.getMessage());
        }
    }

    static String ready(String name, Model model, int context, String shape, long t0) {
        return ready(name, model.format(), context, shape, t0);
    }

    static String ready(String name, String format, int context, String shape, long t0) {
        return String.format("%s (%s, context %d%s) ready in %.1f s", name, format, context, shape, (System.nanoTime() - t0) / 1e9);
    }

    /**
     * Serves {@code engine} over HTTP until SIGTERM or SIGINT, then stops gracefully; prints "tandem COMMAND: READY at URL".
     */
    static int serve(GenerationService engine, ServerConfig serverConfig, String readyLine) throws InterruptedException {
        return serve("serve", engine, serverConfig, readyLine);
    }

    static int serve(String command, GenerationService engine, ServerConfig serverConfig, String readyLine) throws InterruptedException {
        HELIDON_LOG.setLevel(Level.WARNING); // we print the one line that matters
        OpenAiServer server = OpenAiServer.start(engine, serverConfig);
        CountDownLatch stop = new CountDownLatch(1);
        AtomicInteger signals = new AtomicInteger();
        SignalHandler onSignal = sig -> {
            if (signals.incrementAndGet() == 1) stop.countDown();
            else server.cancelRunning(); // a second signal: do not wait for running requests
        };
        Signal.handle(new Signal("TERM"), onSignal);
        Signal.handle(new Signal("INT"), onSignal);
        System.err.printf("tandem %s: %s at %s%n", command, readyLine, server.url());
        System.err.flush();
        stop.await();
        System.err.println("tandem " + command + ": stopping; running requests may finish for " + serverConfig.shutdownTimeout().toSeconds() + " s");
        server.shutdown();
        System.err.println("tandem " + command + ": stopped");
        return 0;
    }
}
