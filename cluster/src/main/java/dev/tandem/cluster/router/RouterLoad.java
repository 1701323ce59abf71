package dev.tandem.cluster.router;

import java.util.concurrent.atomic.AtomicLong;

/** What the router has placed on each worker and not yet seen done: the freshest routing input there is. */
final class RouterLoad {
    record PerWorker(long promptTokens, int sequences) {}

    private final AtomicLong[] promptTokens;
    private final AtomicLong[] sequences;

    RouterLoad(int workers) {
        promptTokens = new AtomicLong[workers];
        sequences = new AtomicLong[workers];
        for (int i = 0; i < workers; i++) {
            promptTokens[i] = new AtomicLong();
            sequences[i] = new AtomicLong();
        }
    }

    PerWorker of(int worker) { return new PerWorker(promptTokens[worker].get(), (int) sequences[worker].get()); }

    void prompt(int worker, long tokens) { promptTokens[worker].addAndGet(tokens); }

    void sequence(int worker, int delta) { sequences[worker].addAndGet(delta); }
}
