package dev.tandem.core.backend.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * A persistent pool that runs one parallel loop at a time: chunks are handed out through an atomic counter and
 * the calling thread works too. Workers spin briefly between loops (decode issues ~100 small loops per token,
 * too many to pay a park/unpark each) and park when idle for longer.
 */
public final class CpuThreadPool implements AutoCloseable {
    /** A loop body over task indices [from, to). */
    public interface Body { void run(int from, int to); }

    private static final long SPIN_NANOS = 300_000;

    /** One parallel loop; published whole so a late worker never mixes two loops' parameters. */
    private record Loop(Body body, int n, int grain, int chunks, AtomicInteger next, AtomicInteger done,
                        AtomicReference<Throwable> error) {
        void work() {
            int c;
            while ((c = next.getAndIncrement()) < chunks) {
                int from = c * grain;
                try {
                    if (error.get() == null) body.run(from, Math.min(n, from + grain));
                } catch (Throwable t) {
                    error.compareAndSet(null, t); // reported by the caller; the loop still completes
                } finally {
                    done.incrementAndGet();
                }
            }
        }
    }

    private final Thread[] workers;
    private volatile Loop loop;
    private volatile boolean closed;

    public CpuThreadPool(int threads) {
        if (threads <= 0) throw new IllegalArgumentException("threads must be positive, got " + threads);
        workers = new Thread[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = Thread.ofPlatform().daemon().name("tandem-cpu-" + (i + 1)).start(this::workerLoop);
        }
    }

    public int threads() { return workers.length + 1; }

    /** Runs body over [0, n) in chunks of {@code grain}; returns when every chunk is done. One caller at a time. */
    public void parallelFor(int n, int grain, Body body) {
        if (n <= 0) return;
        grain = Math.max(1, grain);
        if (workers.length == 0 || n <= grain) {
            body.run(0, n);
            return;
        }
        int chunks = (n + grain - 1) / grain;
        Loop l = new Loop(body, n, grain, chunks, new AtomicInteger(), new AtomicInteger(), new AtomicReference<>());
        loop = l;
        for (Thread w : workers) LockSupport.unpark(w);
        l.work();
        while (l.done.get() < chunks) Thread.onSpinWait();
        Throwable t = l.error.get();
        if (t instanceof RuntimeException r) throw r;
        if (t instanceof Error e) throw e;
        if (t != null) throw new IllegalStateException(t);
    }

    private void workerLoop() {
        Loop seen = null;
        while (!closed) {
            long spinStart = System.nanoTime();
            Loop l;
            while ((l = loop) == seen && !closed) {
                if (System.nanoTime() - spinStart > SPIN_NANOS) LockSupport.parkNanos(this, 1_000_000);
                else Thread.onSpinWait();
            }
            if (closed) return;
            seen = l;
            l.work();
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Thread w : workers) LockSupport.unpark(w);
    }
}
