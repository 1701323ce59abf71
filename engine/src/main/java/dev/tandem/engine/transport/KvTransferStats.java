package dev.tandem.engine.transport;

import java.util.concurrent.atomic.AtomicLong;

/** Counters of a transport, for /metrics: what was sent, how long hand-overs took, how many failed. */
public final class KvTransferStats {
    private final AtomicLong bytesSent = new AtomicLong();
    private final AtomicLong blocksSent = new AtomicLong();
    private final AtomicLong handovers = new AtomicLong();
    private final AtomicLong failures = new AtomicLong();
    private final AtomicLong latencyNanos = new AtomicLong();

    void sent(long bytes) {
        bytesSent.addAndGet(bytes);
        blocksSent.incrementAndGet();
    }

    void handedOver(long nanos) {
        handovers.incrementAndGet();
        latencyNanos.addAndGet(nanos);
    }

    void failed() { failures.incrementAndGet(); }

    public long bytesSent() { return bytesSent.get(); }

    public long blocksSent() { return blocksSent.get(); }

    /** Hand-overs whose commit was sent. */
    public long handovers() { return handovers.get(); }

    public long failures() { return failures.get(); }

    /** Sum over hand-overs of the time from opening the stream to its commit leaving this worker. */
    public double latencySecondsSum() { return latencyNanos.get() / 1e9; }
}
