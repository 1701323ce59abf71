package dev.tandem.server.cli;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineConfig;
import dev.tandem.engine.FinishReason;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.Role;
import dev.tandem.engine.TokenEvent;
import dev.tandem.engine.TokenListener;
import dev.tandem.engine.handover.HandoverTarget;
import dev.tandem.engine.handover.Reservation;
import dev.tandem.engine.transport.InProcessKvTransport;
import dev.tandem.engine.transport.KvTransport;
import dev.tandem.engine.transport.TcpKvServer;
import dev.tandem.engine.transport.TcpKvTransport;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * `tandem bench handover`: what Splitwise's hand-over costs one request on the CPU. Runs the same prompt on one
 * colocated (mixed) engine and split over a prompt engine and a token engine (KV streamed layer by layer over the
 * chosen transport), interleaved rep by rep, and prints time to first token and the second token's latency of
 * both, their ratios, the KV bytes moved and the part of the transfer left after the first token.
 */
final class HandoverBenchCommand {
    static final Map<String, String> VALUED = Args.options(
            "model", "model folder or file",
            "p", "prompt tokens (default 256)",
            "r", "repetitions of each design (default 10, after 2 warm-up runs)",
            "transport", "inproc (memory copy, default) or tcp (loopback socket)",
            "ubatch", "prefill chunk: most tokens per forward pass (default 512)",
            BackendOptions.OPTIONS[0], BackendOptions.OPTIONS[1], BackendOptions.OPTIONS[2], BackendOptions.OPTIONS[3],
            BackendOptions.OPTIONS[4], BackendOptions.OPTIONS[5]);
    static final Map<String, String> FLAGS = Args.options("help", "show options");

    private record Times(double ttft, double second) {}

    int run(String[] argv) throws Exception {
        Args args = new Args("bench handover", argv, VALUED, FLAGS);
        if (args.flag("help")) return Help.print("bench handover --model PATH [-p 256] [-r 10] [--transport inproc|tcp] [--threads N]", VALUED, FLAGS);
        int p = args.integer("p", 256), reps = args.integer("r", 10), ubatch = args.integer("ubatch", 512);
        String transportName = args.string("transport", "inproc");
        if (p <= 0 || reps <= 0 || ubatch <= 0) throw args.usage("-p, -r and --ubatch must be positive");
        if (!transportName.equals("inproc") && !transportName.equals("tcp")) throw args.usage("--transport must be inproc or tcp");
        Path path = Path.of(args.required("model"));
        EngineConfig base = EngineConfig.DEFAULT.withPrefixCaching(false).withMaxNumBatchedTokens(ubatch).withKvCacheBytes(64L << 20);
        try (Model model = ModelLoader.load(path, null);
             Backend colocatedBackend = BackendOptions.open(args); Backend promptBackend = BackendOptions.open(args);
             Backend tokenBackend = BackendOptions.open(args);
             Engine colocated = new Engine(model, colocatedBackend, base);
             Engine prompt = new Engine(model, promptBackend, with(base, Role.PROMPT));
             Engine token = new Engine(model, tokenBackend, with(base, Role.TOKEN))) {
            if (p + 2 > model.config().contextLength()) throw args.usage("-p " + p + " leaves no room in the context of " + model.config().contextLength());
            KvTransport transport;
            TcpKvServer server = null;
            String address;
            if (transportName.equals("tcp")) {
                server = new TcpKvServer(token.kvReceiver(), "127.0.0.1", 0);
                transport = new TcpKvTransport(2000);
                address = "127.0.0.1:" + server.port();
            } else {
                InProcessKvTransport t = new InProcessKvTransport();
                t.register("token", token.kvReceiver());
                transport = t;
                address = "token";
            }
            try {
                SplittableRandom random = new SplittableRandom(42);
                double[][] co = new double[2][reps], sp = new double[2][reps];
                for (int i = -2; i < reps; i++) {
                    int[] ids = random.ints(p, 3, model.config().vocabSize()).toArray();
                    GenerationRequest r = new GenerationRequest(ids, 2, SamplingParams.GREEDY, true, -1);
                    // Alternate which design runs first, so that neither always meets a warmer cache.
                    Times a, b;
                    if ((i & 1) == 0) {
                        a = colocated(colocated, r);
                        b = split(prompt, token, transport, address, r);
                    } else {
                        b = split(prompt, token, transport, address, r);
                        a = colocated(colocated, r);
                    }
                    if (i < 0) continue;
                    co[0][i] = a.ttft;
                    co[1][i] = a.second;
                    sp[0][i] = b.ttft;
                    sp[1][i] = b.second;
                }
                var s = transport.stats();
                System.out.printf("model %s, prompt %d tokens, %d reps per design, --threads %d per engine, transport %s%n%n",
                        path.getFileName(), p, reps, args.integer("threads", Runtime.getRuntime().availableProcessors()), transportName);
                System.out.println("| design | TTFT ms: mean ± sd (median) | 2nd token ms: mean ± sd (median) |");
                System.out.println("|---|---:|---:|");
                System.out.printf("| colocated (1 mixed engine) | %s | %s |%n", ms(co[0]), ms(co[1]));
                System.out.printf("| split (prompt + token engine) | %s | %s |%n", ms(sp[0]), ms(sp[1]));
                System.out.printf("%nsplit / colocated: TTFT %.3fx (medians %.3fx), 2nd token %.3fx (medians %.3fx)%n", mean(sp[0]) / mean(co[0]),
                        median(sp[0]) / median(co[0]), mean(sp[1]) / mean(co[1]), median(sp[1]) / median(co[1]));
                long handovers = Math.max(1, s.handovers());
                System.out.printf("KV sent per request: %.2f MiB in %d blocks; transfer left after the first token: %.3f ms (mean)%n",
                        s.bytesSent() / (double) handovers / (1 << 20), s.blocksSent() / handovers, s.latencySecondsSum() / handovers * 1e3);
            } finally {
                transport.close();
                if (server != null) server.close();
            }
        }
        return 0;
    }

    private static EngineConfig with(EngineConfig c, Role role) {
        return new EngineConfig(c.maxNumSeqs(), c.maxNumBatchedTokens(), c.kvCacheBytes(), c.blockSize(), c.maxQueue(), role, c.prefixCaching());
    }

    /** Records when the first and second tokens reach it. */
    private static final class Clock implements TokenListener {
        final long start = System.nanoTime();
        volatile long first, second;
        final CompletableFuture<Void> done = new CompletableFuture<>();

        @Override
        public void onToken(TokenEvent t) {
            long now = System.nanoTime();
            if (first == 0) first = now;
            else if (second == 0) second = now;
        }

        @Override
        public void onFinish(FinishReason reason, int promptTokens, int generatedTokens, int cachedPromptTokens) {
            if (reason != FinishReason.HANDED_OVER) done.complete(null);
        }

        @Override
        public void onError(Throwable error) { done.completeExceptionally(error); }

        Times times() throws Exception {
            done.get(120, TimeUnit.SECONDS);
            return new Times((first - start) / 1e6, (second - first) / 1e6);
        }
    }

    private static Times colocated(Engine e, GenerationRequest r) throws Exception {
        Clock c = new Clock();
        e.submit(r, c);
        return c.times();
    }

    private static Times split(Engine prompt, Engine token, KvTransport transport, String address, GenerationRequest r) throws Exception {
        Clock c = new Clock();
        Reservation res = token.reserve(r, c, Duration.ofSeconds(60));
        prompt.submit(r, c, new HandoverTarget(transport, address, res.id(), Duration.ofSeconds(60)));
        return c.times();
    }

    private static double mean(double[] x) {
        double s = 0;
        for (double v : x) s += v;
        return s / x.length;
    }

    private static double median(double[] x) {
        double[] s = x.clone();
        java.util.Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    /** Mean ± sd (median): the median resists the shared machine's stalls. */
    private static String ms(double[] x) {
        double m = mean(x), v = 0;
        for (double d : x) v += (d - m) * (d - m);
        return String.format("%.2f ± %.2f (%.2f)", m, Math.sqrt(v / Math.max(1, x.length - 1)), median(x));
    }
}
