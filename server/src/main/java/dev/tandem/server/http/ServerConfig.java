package dev.tandem.server.http;

import java.time.Duration;
import java.util.Optional;

/**
 * How the HTTP server runs.
 *
 * @param host             address to bind (127.0.0.1 by default: not reachable from other machines)
 * @param port             0 picks a free port
 * @param apiKey           when present, requests need "Authorization: Bearer KEY" (health and metrics stay open)
 * @param servedModelName  the model name clients send and /v1/models lists
 * @param maxBodyBytes     larger request bodies are refused with 413
 * @param shutdownTimeout  how long a graceful stop lets running requests finish before cancelling them
 */
public record ServerConfig(String host, int port, Optional<String> apiKey, String servedModelName, long maxBodyBytes,
                           Duration shutdownTimeout) {
    public static final long DEFAULT_MAX_BODY = 4L << 20;

    public ServerConfig {
        if (port < 0 || port > 65535) throw new IllegalArgumentException("port must be in 0..65535, got " + port);
        if (maxBodyBytes <= 0) throw new IllegalArgumentException("the body limit must be positive, got " + maxBodyBytes);
        if (shutdownTimeout.isNegative()) throw new IllegalArgumentException("shutdown timeout must be >= 0, got " + shutdownTimeout);
    }

    public static ServerConfig local(String servedModelName) {
        return new ServerConfig("127.0.0.1", 0, Optional.empty(), servedModelName, DEFAULT_MAX_BODY, Duration.ofSeconds(30));
    }

    public ServerConfig withPort(int p) { return new ServerConfig(host, p, apiKey, servedModelName, maxBodyBytes, shutdownTimeout); }

    public ServerConfig withApiKey(String key) { return new ServerConfig(host, port, Optional.ofNullable(key), servedModelName, maxBodyBytes, shutdownTimeout); }

    public ServerConfig withShutdownTimeout(Duration d) { return new ServerConfig(host, port, apiKey, servedModelName, maxBodyBytes, d); }
}
