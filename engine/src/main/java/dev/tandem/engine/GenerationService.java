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
}
