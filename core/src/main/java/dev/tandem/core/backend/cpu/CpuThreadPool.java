package dev.tandem.core.backend.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * Persistent worker threads for the CPU backend's data-parallel ops. {@link #parallelFor} hands out task
 * indices [0, n) through an atomic counter; the calling thread takes tasks too and returns once all are done.
 *
 * <p>Decode issues ~100 parallel ops per token, a few tens of microseconds apart, so a dispatch must cost
 * microseconds: idle workers spin on the published job (the generation) for {@code spinNanos} before parking,
 * and a dispatch only unparks the workers that actually parked.
 */
public final class CpuThreadPool implements AutoCloseable {

    /** The body of a parallel loop: runs task {@code index}; must be safe to run concurrently for distinct indices. */
    @FunctionalInterface
    public interface Body {
        void run(int index);
    }

    /** One dispatch. A new object per dispatch, so a worker that wakes late finds its job exhausted. */
    private static final class Job {
        final Body body;
        final int tasks;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger done = new AtomicInteger();
        volatile Throwable error;

        Job(Body body, int tasks) {
            this.body = body;
            this.tasks = tasks;
        }

        void work() {
            int i;
            while ((i = next.getAndIncrement()) < tasks) {
                try {
                    body.run(i);
                } catch (Throwable t) {
                    if (error == null) error = t;
                } finally {
                    done.incrementAndGet();
                }
            }
        }
    }

    public static final long DEFAULT_SPIN_NANOS = 200_000;

    private final Worker[] workers;
    private final long spinNanos;
    private volatile Job job;
    private volatile boolean closed;

    /** A pool using every available core (the caller counts as one). */
    public CpuThreadPool() {
        this(Runtime.getRuntime().availableProcessors(), DEFAULT_SPIN_NANOS);
    }

    /** @param threads threads working on each op, the caller included (1 = run everything on the caller) */
    public CpuThreadPool(int threads, long spinNanos) {
        if (threads < 1) throw new IllegalArgumentException("threads " + threads);
        this.spinNanos = spinNanos;
        workers = new Worker[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker("tandem-cpu-" + (i + 1));
            workers[i].start();
        }
    }

    /** Threads that work on a parallel op, the caller included. */
    public int threads() { return workers.length + 1; }

    /**
     * Runs body.run(i) for every i in [0, tasks), spread over the workers and the calling thread; returns when
     * all have finished and rethrows the first failure. Calls from a worker (nested loops) or while another
     * thread's loop is running execute serially on the caller.
     */
    public void parallelFor(int tasks, Body body) {
        if (tasks <= 0) return;
        if (tasks == 1 || workers.length == 0 || Thread.currentThread() instanceof Worker || closed) {
            for (int i = 0; i < tasks; i++) body.run(i);
            return;
        }
        synchronized (this) {
            Job j = new Job(body, tasks);
            job = j;
            for (Worker w : workers) {
                if (w.parked) LockSupport.unpark(w);
            }
            j.work();
            while (j.done.get() < tasks) Thread.onSpinWait();
            Throwable t = j.error;
            if (t instanceof RuntimeException e) throw e;
            if (t instanceof Error e) throw e;
            if (t != null) throw new RuntimeException(t);
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Worker w : workers) LockSupport.unpark(w);
        for (Worker w : workers) {
            try {
                w.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private final class Worker extends Thread {
        volatile boolean parked;

        Worker(String name) {
            super(name);
            setDaemon(true);
        }

        @Override
        public void run() {
            // Not the current job: one published before this thread got here must still be worked on.
            Job seen = null;
            while (!closed) {
                Job j = job;
                if (j != seen) {
                    seen = j;
                    if (j != null) j.work();
                    continue;
                }
                long deadline = System.nanoTime() + spinNanos;
                int spins = 0;
                while (job == seen && !closed) {
                    Thread.onSpinWait();
                    if ((++spins & 255) == 0 && System.nanoTime() > deadline) {
                        // Publish "parked" before re-checking the job: a dispatcher either sees the flag and
                        // unparks us, or we see its job here (both fields are volatile).
                        parked = true;
                        if (job == seen && !closed) LockSupport.park(this);
                        parked = false;
                        deadline = System.nanoTime() + spinNanos;
                    }
                }
            }
        }
    }
}
