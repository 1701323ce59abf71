package dev.tandem.engine.transport;

import java.util.concurrent.atomic.AtomicLong;

/** Counters of a transport, for /metrics: what was sent, how long hand-overs took, how many failed. */
public final class KvTransferStats {
    private final AtomicLong bytesSent = new AtomicLong();
    private final AtomicLong blocksSent = new AtomicLong();
    private final AtomicLong handovers = new AtomicLong();
    private final AtomicLong failures = new AtomicLong();
    private final AtomicLong latencyNanos = new AtomicLong();

    public KvTransferStats() {}

    /** Counters reported by another process (a remote worker's transport). */
    public static KvTransferStats of(long bytesSent, long blocksSent, long handovers, long failures, double latencySeconds) {
        KvTransferStats s = new KvTransferStats();
        s.bytesSent.set(bytesSent);
        s.blocksSent.set(blocksSent);
        s.handovers.set(handovers);
        s.failures.set(failures);
        s.latencyNanos.set((long) (latencySeconds * 1e9));
        return s;
    }

    /** A transport sent {@code blocks} blocks (of one layer) in {@code bytes}. */
    public void sent(long bytes, int blocks) {
        bytesSent.addAndGet(bytes);
        blocksSent.addAndGet(blocks);
    }

    public void handedOver(long nanos) {
        handovers.incrementAndGet();
        latencyNanos.addAndGet(nanos);
    }

    public void failed() { failures.incrementAndGet(); }

    public long bytesSent() { return bytesSent.get(); }

    public long blocksSent() { return blocksSent.get(); }

    /** Hand-overs whose commit was sent. */
    public long handovers() { return handovers.get(); }

    public long failures() { return failures.get(); }

    /**
     * Sum over hand-overs of the time from the first token (commit queued) to the commit leaving this worker: the
     * part of the transfer not hidden behind the prefill's compute.
     */
    public double latencySecondsSum() { return latencyNanos.get() / 1e9; }
}
