package dev.tandem.bench;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;

/** Counters the request threads bump and the progress bar reads; text chunks stand in for tokens while running. */
public final class LiveCounters {
    final AtomicInteger issued = new AtomicInteger();
    final AtomicInteger done = new AtomicInteger();
    final AtomicInteger failed = new AtomicInteger();
    final LongAdder chunks = new LongAdder();
    volatile long startNanos = System.nanoTime();

    int inFlight() {
        return issued.get() - done.get();
    }

    double elapsedS() {
        return (System.nanoTime() - startNanos) / 1e9;
    }
}
