package dev.tandem.server.cli;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineConfig;
import dev.tandem.engine.FinishReason;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.TokenEvent;
import dev.tandem.engine.TokenListener;
import dev.tandem.server.http.OpenAiServer;
import dev.tandem.server.http.ServerConfig;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * `tandem bench overhead`: what the HTTP server adds to a 1-token completion. Times the same request straight
 * into the engine and through POST /v1/completions on a loopback server in the same process (median of many
 * runs, after a warm-up), and prints both and their difference.
 */
final class OverheadBenchCommand {
    static final Map<String, String> VALUED = Args.options(
            "model", "model folder or file",
            "prompt", "prompt text (default 'Once upon a time')",
            "r", "repetitions (default 200)",
            BackendOptions.OPTIONS[0], BackendOptions.OPTIONS[1], BackendOptions.OPTIONS[2], BackendOptions.OPTIONS[3],
            BackendOptions.OPTIONS[4], BackendOptions.OPTIONS[5]);
    static final Map<String, String> FLAGS = Args.options("help", "show options");

    private static final java.util.logging.Logger HELIDON_LOG = java.util.logging.Logger.getLogger("io.helidon");

    int run(String[] argv) throws Exception {
        HELIDON_LOG.setLevel(java.util.logging.Level.WARNING);
        Args args = new Args("bench overhead", argv, VALUED, FLAGS);
        if (args.flag("help")) return Help.print("bench overhead --model PATH [-r 200]", VALUED, FLAGS);
        String prompt = args.string("prompt", "Once upon a time");
        int reps = args.integer("r", 200);
        if (reps <= 0) throw args.usage("-r must be positive");
        Path path = Path.of(args.required("model"));
        try (Backend backend = BackendOptions.open(args); Model model = ModelLoader.load(path, null);
             Engine engine = new Engine(model, backend, EngineConfig.DEFAULT.withPrefixCaching(false))) {
            int[] ids = model.tokenizer().encode(prompt, true);
            GenerationRequest request = GenerationRequest.greedy(ids, 1);
            ServerConfig config = new ServerConfig("127.0.0.1", 0, Optional.empty(), "bench", ServerConfig.DEFAULT_MAX_BODY, Duration.ofSeconds(5));
            try (OpenAiServer server = OpenAiServer.start(engine, config)) {
                HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
                String body = "{\"model\":\"bench\",\"prompt\":" + new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(prompt)
                        + ",\"max_tokens\":1,\"temperature\":0}";
                HttpRequest http = HttpRequest.newBuilder(URI.create(server.url() + "/v1/completions"))
                        .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build();
                double[] direct = new double[reps], viaHttp = new double[reps];
                for (int warm = 0; warm < Math.max(20, reps / 5); warm++) { // JIT both paths first
                    direct(engine, request);
                    send(client, http);
                }
                for (int i = 0; i < reps; i++) { // interleaved, so drift hits both alike
                    direct[i] = direct(engine, request);
                    viaHttp[i] = send(client, http);
                }
                double d = median(direct), h = median(viaHttp);
                System.out.println("| path | median ms (" + reps + " runs) | p90 ms |");
                System.out.println("| --- | ---: | ---: |");
                System.out.printf("| engine.submit, 1-token completion of %d prompt tokens | %.3f | %.3f |%n", ids.length, d, pct(direct, 0.9));
                System.out.printf("| POST /v1/completions (loopback, same process) | %.3f | %.3f |%n", h, pct(viaHttp, 0.9));
                System.out.printf("| server overhead (difference of medians) | %.3f | |%n", h - d);
            }
        }
        return 0;
    }

    private static double direct(Engine engine, GenerationRequest request) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        long t0 = System.nanoTime();
        engine.submit(request, new TokenListener() {
            public void onToken(TokenEvent token) { }

            public void onFinish(FinishReason reason, int p, int g, int c) { done.complete(null); }

            public void onError(Throwable error) { done.completeExceptionally(error); }
        });
        done.join();
        return (System.nanoTime() - t0) / 1e6;
    }

    private static double send(HttpClient client, HttpRequest request) throws Exception {
        long t0 = System.nanoTime();
        HttpResponse<String> r = client.send(request, HttpResponse.BodyHandlers.ofString());
        double ms = (System.nanoTime() - t0) / 1e6;
        if (r.statusCode() != 200) throw new IllegalStateException("HTTP " + r.statusCode() + ": " + r.body());
        return ms;
    }

    private static double median(double[] v) { return pct(v, 0.5); }

    private static double pct(double[] v, double q) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s[Math.min(s.length - 1, (int) Math.floor(q * (s.length - 1) + 0.5))];
    }
}
