package dev.tandem.cluster.router;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/** What the router has placed on each worker and not yet seen done: the freshest routing input there is. */
final class RouterLoad {
    record PerWorker(long promptTokens, int sequences) {}

    private final Map<Integer, AtomicLong> promptTokens = new ConcurrentHashMap<>();
    private final Map<Integer, AtomicLong> sequences = new ConcurrentHashMap<>();

    PerWorker of(int worker) { return new PerWorker(get(promptTokens, worker).get(), (int) get(sequences, worker).get()); }

    void prompt(int worker, long tokens) { get(promptTokens, worker).addAndGet(tokens); }

    void sequence(int worker, int delta) { get(sequences, worker).addAndGet(delta); }

    private static AtomicLong get(Map<Integer, AtomicLong> m, int worker) { return m.computeIfAbsent(worker, w -> new AtomicLong()); }
}
