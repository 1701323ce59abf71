package dev.tandem.engine;

import dev.tandem.core.tokenizer.Tokenizer;

import java.time.Duration;

/**
 * What a front end (the HTTP server, the embedding API) needs from whatever generates tokens: one {@link Engine},
 * or a whole cluster behind a router. Both batch requests from any number of threads.
 */
public interface GenerationService extends AutoCloseable {
    Tokenizer tokenizer();

    int contextLength();

    /** Counters and gauges for /metrics (a cluster sums its workers'). */
    EngineStats stats();

    /**
     * Queues a request. Throws IllegalArgumentException when it can never fit (context or KV cache),
     * QueueFullException when the waiting queue is at its bound, IllegalStateException when shutting down.
     */
    RequestHandle submit(GenerationRequest request, TokenListener listener);

    /** Stops accepting requests, lets running ones finish until the deadline, then cancels the rest. */
    void shutdown(Duration grace);

    @Override
    void close();

    /** A figure for /metrics beyond {@link EngineStats}: a cluster's pool sizes, KV transfers, role changes. */
    record Metric(String name, String help, boolean counter, double value) {}

    /** Extra figures, the same names at every call; none by default. */
    default java.util.List<Metric> extraMetrics() { return java.util.List.of(); }

    /** One line for /health when something is degraded (e.g. membership lost), else null. */
    default String degraded() { return null; }

    /** Waits until {@code busy} turns false or {@code grace} passed (the first half of a graceful shutdown). */
    static void awaitIdle(java.util.function.BooleanSupplier busy, Duration grace) {
        long deadline = System.nanoTime() + grace.toNanos();
        while (System.nanoTime() < deadline && busy.getAsBoolean()) {
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
