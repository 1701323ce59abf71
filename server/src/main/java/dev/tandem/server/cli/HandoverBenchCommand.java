package dev.tandem.server.cli;

import dev.tandem.cluster.device.DeviceKvHub;
import dev.tandem.cluster.device.DeviceKvTransport;
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
import dev.tandem.engine.exec.ModelRunner;
import dev.tandem.cuda.CudaDriver;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.engine.transport.KvStream;
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
 * `tandem bench handover`: what Splitwise's hand-over costs one request. Runs the same prompt on one colocated
 * (mixed) engine and split over a prompt engine and a token engine (KV streamed layer by layer over the chosen
 * transport), interleaved rep by rep, and prints time to first token and the second token's latency of both, their
 * ratios, the KV bytes moved and the part of the transfer left after the first token. With --device cuda the prompt
 * (and colocated) engine runs on --device, the token engine on --token-device (default: the next GPU), KV over NCCL
 * (a device copy on one GPU), and a transfer-only run measures the link's GB/s for the prompt's whole KV.
 */
final class HandoverBenchCommand {
    static final Map<String, String> VALUED = Args.options(
            "model", "model folder or file",
            "p", "prompt tokens (default 256)",
            "r", "repetitions of each design (default 10, after 2 warm-up runs)",
            "transport", "on the CPU: inproc (memory copy, default) or tcp (loopback socket); on GPUs always NCCL (device copy on one GPU)",
            "token-device", "with --device cuda: the token engine's GPU (default: the next GPU, or the same when there is one)",
            "ubatch", "prefill chunk: most tokens per forward pass (default 512)",
            BackendOptions.OPTIONS[0], BackendOptions.OPTIONS[1], BackendOptions.OPTIONS[2], BackendOptions.OPTIONS[3],
            BackendOptions.OPTIONS[4], BackendOptions.OPTIONS[5]);
    static final Map<String, String> FLAGS = Args.options("help", "show options");

    private record Times(double ttft, double second) {}

    int run(String[] argv) throws Exception {
        Args args = new Args("bench handover", argv, VALUED, FLAGS);
        if (args.flag("help")) {
            return Help.print("bench handover --model PATH [-p 256] [-r 10] [--transport inproc|tcp] [--threads N] [--device cuda[:N] [--token-device cuda:M]]",
                    VALUED, FLAGS);
        }
        int p = args.integer("p", 256), reps = args.integer("r", 10), ubatch = args.integer("ubatch", 512);
        String transportName = args.string("transport", "inproc");
        if (p <= 0 || reps <= 0 || ubatch <= 0) throw args.usage("-p, -r and --ubatch must be positive");
        if (!transportName.equals("inproc") && !transportName.equals("tcp")) throw args.usage("--transport must be inproc or tcp");
        Path path = Path.of(args.required("model"));
        String device = args.string("device", "cpu");
        boolean gpu = device.startsWith("cuda");
        String tokenDevice = args.has("token-device") ? args.string("token-device", null) : gpu ? nextGpu(device) : device;
        if (!gpu && args.has("token-device")) throw args.usage("--token-device needs --device cuda");
        try (Model model = ModelLoader.load(path, null);
             Backend colocatedBackend = BackendOptions.open(args); Backend promptBackend = BackendOptions.open(args);
             Backend tokenBackend = BackendOptions.open(args, tokenDevice);
             Engine colocated = new Engine(model, colocatedBackend, config(model, p, ubatch));
             Engine prompt = new Engine(model, promptBackend, with(config(model, p, ubatch), Role.PROMPT));
             Engine token = new Engine(model, tokenBackend, with(config(model, p, ubatch), Role.TOKEN))) {
            if (p + 2 > model.config().contextLength()) throw args.usage("-p " + p + " leaves no room in the context of " + model.config().contextLength());
            KvTransport transport;
            TcpKvServer server = null;
            String address;
            if (gpu) {
                DeviceKvHub hub = new DeviceKvHub();
                hub.register("token", (CudaBackend) tokenBackend, token.kvStorage(), token.kvReceiver());
                DeviceKvTransport t = new DeviceKvTransport((CudaBackend) promptBackend, hub);
                t.connect("token", prompt.kvStorage());
                transport = t;
                address = "token";
                transportName = ((CudaBackend) promptBackend).ordinal() == ((CudaBackend) tokenBackend).ordinal()
                        ? "device copy on " + device : "NCCL " + device + " -> " + tokenDevice;
            } else if (transportName.equals("tcp")) {
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
                String where = gpu ? "engines on " + promptBackend.name() + " (prompt, colocated) and " + tokenBackend.name() + " (token)"
                        : "--threads " + args.integer("threads", Runtime.getRuntime().availableProcessors()) + " per engine";
                System.out.printf("model %s, prompt %d tokens, %d reps per design, %s, transport %s%n%n", path.getFileName(), p, reps, where, transportName);
                System.out.println("| design | TTFT ms: mean ± sd (median) | 2nd token ms: mean ± sd (median) |");
                System.out.println("|---|---:|---:|");
                System.out.printf("| colocated (1 mixed engine) | %s | %s |%n", ms(co[0]), ms(co[1]));
                System.out.printf("| split (prompt + token engine) | %s | %s |%n", ms(sp[0]), ms(sp[1]));
                System.out.printf("%nsplit / colocated: TTFT %.3fx (medians %.3fx), 2nd token %.3fx (medians %.3fx)%n", mean(sp[0]) / mean(co[0]),
                        median(sp[0]) / median(co[0]), mean(sp[1]) / mean(co[1]), median(sp[1]) / median(co[1]));
                long handovers = Math.max(1, s.handovers());
                System.out.printf("KV sent per request: %.2f MiB in %d blocks; transfer left after the first token: %.3f ms (mean)%n",
                        s.bytesSent() / (double) handovers / (1 << 20), s.blocksSent() / handovers, s.latencySecondsSum() / handovers * 1e3);
                if (gpu) transferOnly(prompt, token, (CudaBackend) promptBackend, transport, address, p, reps, model.config().vocabSize());
            } finally {
                transport.close();
                if (server != null) server.close();
            }
        }
        return 0;
    }

    /** Room for one request of p + 2 tokens (and a few blocks more) in every engine, whatever the model's KV size. */
    private static EngineConfig config(Model model, int p, int ubatch) {
        EngineConfig d = EngineConfig.DEFAULT;
        long bytes = Math.max(64L << 20, (p + 2L + 4L * d.blockSize()) * ModelRunner.kvBytesPerToken(model.config()));
        return d.withPrefixCaching(false).withMaxNumBatchedTokens(ubatch).withKvCacheBytes(bytes);
    }

    private static String nextGpu(String device) {
        int n = CudaDriver.get().deviceCount();
        int at = device.startsWith("cuda:") ? Integer.parseInt(device.substring(5)) : 0;
        return "cuda:" + (n > 1 ? (at + 1) % n : at);
    }

    /**
     * The link alone: the KV of a whole prompt of p tokens (every layer's blocks, as the prefill would stream them) sent
     * back to back from the idle prompt engine's cache into a reservation, timed from the first layer to the commit.
     */
    private static void transferOnly(Engine prompt, Engine token, CudaBackend promptBackend, KvTransport transport, String address, int p, int reps,
                                     int vocab) throws Exception {
        int blockSize = prompt.config().blockSize(), blocks = Math.ceilDiv(p, blockSize), layers = prompt.kvStorage().layout().layers();
        int[] ids = new int[blocks];
        for (int i = 0; i < blocks; i++) ids[i] = i;
        long bytes = 2L * layers * blocks * promptBackend.kvBlockBytes(prompt.kvStorage());
        promptBackend.useOnThisThread(); // sendLayer marks the compute stream from the caller's thread
        double[] gbs = new double[reps];
        for (int i = -1; i < reps; i++) {
            GenerationRequest r = new GenerationRequest(new SplittableRandom(i + 7).ints(p, 3, vocab).toArray(), 1, SamplingParams.GREEDY, true, -1);
            Clock c = new Clock();
            Reservation res = token.reserve(r, c, Duration.ofSeconds(60));
            promptBackend.synchronize();
            long t0 = System.nanoTime();
            KvStream s = transport.open(address, res.id(), prompt.kvStorage(), t0 + Duration.ofSeconds(60).toNanos());
            for (int l = 0; l < layers; l++) s.sendLayer(l, ids, 0);
            CompletableFuture<Throwable> done = new CompletableFuture<>();
            int[] tokens = java.util.Arrays.copyOf(r.promptTokens(), p + 1);
            s.commit(tokens, done::complete);
            Throwable failure = done.get(120, TimeUnit.SECONDS);
            long nanos = System.nanoTime() - t0;
            if (failure != null) throw new IllegalStateException("transfer-only hand-over failed: " + failure.getMessage(), failure);
            c.done.get(120, TimeUnit.SECONDS);
            if (i >= 0) gbs[i] = bytes / (nanos / 1e9) / 1e9;
        }
        System.out.printf("transfer only (%d layers x %d blocks, %.2f MiB): %s GB/s (the H200's GPU-to-GPU copy: 394 GB/s)%n", layers, blocks,
                bytes / (double) (1 << 20), ms(gbs));
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
