package dev.tandem.server.http;

import dev.tandem.engine.GenerationService;
import dev.tandem.server.api.CompletionRequest;
import dev.tandem.server.chat.PromptEncoder;
import dev.tandem.server.generation.Generator;
import dev.tandem.server.metrics.ServerMetrics;
import io.helidon.http.HeaderNames;
import io.helidon.http.Method;
import io.helidon.webserver.WebServer;
import io.helidon.webserver.http.HttpRouting;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.Map;
import java.util.Set;

/**
 * The OpenAI-compatible HTTP server in front of one engine, on Helidon SE's WebServer: every request runs on its
 * own virtual thread, so a streaming response simply blocks on its token queue and on socket writes while the
 * engine loop runs undisturbed on its own thread.
 */
public final class OpenAiServer implements AutoCloseable {
    /** Paths and the methods they answer, for 405 versus 404. */
    private static final Map<String, String> ROUTES = Map.of(
            "/health", "GET", "/metrics", "GET", "/v1/models", "GET",
            "/v1/completions", "POST", "/v1/chat/completions", "POST");

    private final WebServer server;
    private final Generator generator;
    private final ServerMetrics metrics;
    private final ServerConfig config;

    private OpenAiServer(GenerationService engine, ServerConfig config) {
        this.config = config;
        this.metrics = new ServerMetrics(config.servedModelName(), engine::stats, engine::extraMetrics);
        this.generator = new Generator(engine, metrics);
        PromptEncoder prompts = new PromptEncoder(engine.tokenizer(), PromptEncoder.templateOf(engine.tokenizer()));
        ModelsEndpoint models = new ModelsEndpoint(config.servedModelName(), engine.contextLength());

        HttpRouting.Builder routing = HttpRouting.builder();
        config.apiKey().ifPresent(key -> routing.addFilter(new BearerAuth(key, Set.of("/health", "/metrics"))));
        routing.get("/health", (req, res) -> health(engine, res))
                .get("/metrics", this::metrics)
                .get("/v1/models", models::list)
                .get("/v1/models/{id}", models::one)
                .post("/v1/completions", new GenerationEndpoint(CompletionRequest.Endpoint.COMPLETIONS, generator, prompts, config))
                .post("/v1/chat/completions", new GenerationEndpoint(CompletionRequest.Endpoint.CHAT, generator, prompts, config))
                .any(OpenAiServer::unrouted)
                .error(Throwable.class, (req, res, t) -> ErrorMapper.send(res, ErrorMapper.map(t)));

        this.server = WebServer.builder()
                .host(config.host())
                .port(config.port())
                // Tokens stream as small writes: with Nagle's algorithm on (Helidon's default) each waited for the
                // client's delayed ACK, up to 40 ms, which showed as TTFT and TBT on an idle GPU server.
                .connectionOptions(o -> o.tcpNoDelay(true))
                // Backstop only: bodies over our own limit get an OpenAI-shaped 413 from RequestBody first.
                .maxPayloadSize(Math.max(64L << 20, config.maxBodyBytes() * 4))
                .shutdownGracePeriod(config.shutdownTimeout().plusSeconds(5))
                .routing(routing)
                .build();
    }

    /** Binds and starts serving; a port that cannot be bound is an IllegalStateException saying why. */
    public static OpenAiServer start(GenerationService engine, ServerConfig config) {
        checkBindable(config);
        OpenAiServer s = new OpenAiServer(engine, config);
        s.server.start();
        if (!s.server.isRunning()) throw new IllegalStateException("could not listen on " + config.host() + ":" + config.port());
        return s;
    }

    /** Helidon logs a failed bind and carries on; find out first, so the user gets one clear line. */
    private static void checkBindable(ServerConfig config) {
        if (config.port() == 0) return;
        try (ServerSocket probe = new ServerSocket()) {
            probe.setReuseAddress(true);
            probe.bind(new InetSocketAddress(config.host(), config.port()));
        } catch (IOException e) {
            throw new IllegalStateException("cannot listen on " + config.host() + ":" + config.port() + ": " + e.getMessage()
                    + " (is another server using the port? choose one with --port)");
        }
    }

    public int port() { return server.port(); }

    public String url() {
        String host = config.host().contains(":") ? "[" + config.host() + "]" : config.host();
        return "http://" + host + ":" + port();
    }

    public ServerMetrics metrics() { return metrics; }

    /**
     * Graceful stop: the listening socket closes and idle connections are dropped at once; running requests may
     * finish until the shutdown timeout, when whatever is left is cancelled (streams end with finish_reason
     * "cancelled"). Returns when every request handler has returned.
     */
    public void shutdown() {
        Duration timeout = config.shutdownTimeout();
        Thread deadline = Thread.ofPlatform().daemon().name("tandem-shutdown-deadline").start(() -> {
            try {
                Thread.sleep(timeout);
                generator.cancelAll();
            } catch (InterruptedException e) {
                // every request finished in time
            }
        });
        server.stop();
        deadline.interrupt();
    }

    /** Cancels every running request (their streams end with finish_reason "cancelled"). */
    public void cancelRunning() { generator.cancelAll(); }

    /** Stops at once, cancelling running requests. */
    @Override
    public void close() {
        generator.cancelAll();
        server.stop();
    }

    /** OK, or a line saying what is degraded while the server keeps serving (e.g. a cluster without etcd). */
    private static void health(GenerationService engine, ServerResponse res) {
        res.header(HeaderNames.CONTENT_TYPE, "text/plain");
        String degraded = engine.degraded();
        res.send(degraded == null ? "OK" : "DEGRADED: " + degraded);
    }

    private void metrics(ServerRequest req, ServerResponse res) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream(16 << 10);
        metrics.write(out);
        res.header(HeaderNames.CONTENT_TYPE, metrics.contentType());
        res.send(out.toByteArray());
    }

    private static void unrouted(ServerRequest req, ServerResponse res) {
        String path = req.path().path();
        String allowed = ROUTES.get(path.length() > 1 && path.endsWith("/") ? path.substring(0, path.length() - 1) : path);
        if (allowed == null && path.startsWith("/v1/models/")) allowed = "GET";
        if (allowed != null && !req.prologue().method().equals(Method.create(allowed))) {
            res.header(HeaderNames.ALLOW, allowed);
            throw new ApiError(405, "invalid_request_error", "method " + req.prologue().method().text() + " is not allowed on " + path
                    + "; use " + allowed, null, "method_not_allowed");
        }
        throw ApiError.notFound("no such path: " + req.prologue().method().text() + " " + path
                + " (this server answers /v1/completions, /v1/chat/completions, /v1/models, /health and /metrics)", "not_found");
    }
}
