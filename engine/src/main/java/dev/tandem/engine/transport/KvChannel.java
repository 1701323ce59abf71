package dev.tandem.engine.transport;

import dev.tandem.core.backend.KvStorage;

import java.io.IOException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;

/**
 * The path to one receiver: a sender thread works through the streams' messages in the order they were queued,
 * so that a sequence's commit always follows its blocks. Subclasses say how a layer's blocks, a commit and an
 * abort travel (host memory: one copy or write per block; device memory: a gather and one transfer per layer).
 */
public abstract class KvChannel implements AutoCloseable {
    private final LinkedBlockingQueue<Runnable> queue = new LinkedBlockingQueue<>();
    private final Thread sender;
    private final KvTransferStats stats;
    /** Deadline of the message being sent, 0 when idle: a watchdog may cut a send that blocks past it. */
    protected volatile long busyUntil;
    private volatile boolean closed;

    protected KvChannel(String name, KvTransferStats stats) {
        this.stats = stats;
        this.sender = Thread.ofPlatform().daemon().name("tandem-kv-send-" + name).start(this::drain);
    }

    /**
     * Sends blocks {@code blocks} (physical ids in {@code source}) of {@code layer}, the first being the sequence's
     * block {@code firstIndex}; returns the bytes sent. {@code mark} is what {@link #mark} returned when the layer
     * was queued.
     */
    protected abstract long layer(long reservation, KvStorage source, int layer, int[] blocks, int firstIndex, Object mark, long deadline)
            throws IOException, TimeoutException;

    protected abstract void commit(long reservation, int[] tokens, long deadline) throws IOException, TimeoutException;

    protected abstract void abort(long reservation, String reason) throws IOException;

    /**
     * Called on the engine's thread where the forward pass hands a layer over, before it is queued: a device
     * channel marks its compute stream there (the layer's KV write is only queued on it). Null by default.
     */
    protected Object mark() { return null; }

    /** The sender thread is done with {@code mark} (sent, skipped or failed). */
    protected void release(Object mark) {}

    /** A stream failed with {@code failure}; a device channel aborts transfers that may be stuck. */
    protected void failed(Throwable failure) {}

    /**
     * On the sender thread before its first message (a device channel makes its context current there). Not at the
     * thread's start: that runs inside this constructor, before a subclass's fields are set.
     */
    protected void senderStarted() {}

    /** Last thing on the sender thread, once closed and drained (a device channel frees its buffers there). */
    protected void senderStopped() {}

    /** Whether the channel can still carry messages (a broken path is replaced by a new channel). */
    public boolean usable() { return !closed; }

    /** Runs messages until the channel is closed and nothing is left: after a close they fail fast, and every commit still gets its answer. */
    private void drain() {
        boolean started = false;
        while (!closed || !queue.isEmpty()) {
            try {
                Runnable next = queue.poll(100, TimeUnit.MILLISECONDS);
                if (next == null) continue;
                // The queue hands the message over after the constructor finished: the subclass is complete here.
                if (!started) {
                    started = true;
                    try {
                        senderStarted();
                    } catch (RuntimeException e) {
                        // The messages still run (and fail), so that every commit gets its answer.
                        java.util.logging.Logger.getLogger(KvChannel.class.getName()).warning("KV channel: " + e);
                    }
                }
                next.run();
            } catch (InterruptedException e) {
                break;
            }
        }
        senderStopped(); // after seeing 'closed' set (volatile), which happens after construction
    }

    /** Stops taking messages; those queued still run (and fail if the path is gone), so no hand-over is left hanging. */
    @Override
    public void close() {
        closed = true;
    }

    /** Waits up to {@code millis} for the sender thread to finish after {@link #close}. */
    public void join(long millis) throws InterruptedException { sender.join(millis); }

    public KvStream stream(long reservation, KvStorage source, long deadlineNanos) { return new Stream(reservation, source, deadlineNanos); }

    private final class Stream implements KvStream {
        private final long reservation;
        private final KvStorage source;
        private final long deadline;
        /** Set once, by the sender thread; later messages of the stream are skipped. */
        private volatile Throwable failure;
        private volatile boolean aborted;

        Stream(long reservation, KvStorage source, long deadline) {
            this.reservation = reservation;
            this.source = source;
            this.deadline = deadline;
        }

        @Override
        public void sendLayer(int layer, int[] blocks, int firstIndex) {
            if (failure != null || aborted) return;
            Object mark = mark();
            queue.add(() -> {
                try {
                    if (failure != null || aborted || !inTime()) return;
                    busyUntil = deadline;
                    long bytes = KvChannel.this.layer(reservation, source, layer, blocks, firstIndex, mark, deadline);
                    stats.sent(bytes, blocks.length);
                } catch (IOException | TimeoutException | RuntimeException e) {
                    fail(e);
                } finally {
                    busyUntil = 0;
                    release(mark);
                }
            });
        }

        @Override
        public void commit(int[] tokens, Consumer<Throwable> done) {
            if (closed && !sender.isAlive()) {
                done.accept(new IOException("the KV channel is closed"));
                return;
            }
            long queued = System.nanoTime();
            queue.add(() -> {
                if (aborted) {
                    done.accept(new IllegalStateException("hand-over of reservation " + reservation + " was aborted"));
                    return;
                }
                if (failure == null && inTime()) {
                    try {
                        busyUntil = deadline;
                        KvChannel.this.commit(reservation, tokens, deadline);
                        stats.handedOver(System.nanoTime() - queued);
                    } catch (IOException | TimeoutException | RuntimeException e) {
                        fail(e);
                    } finally {
                        busyUntil = 0;
                    }
                }
                done.accept(failure);
            });
        }

        @Override
        public void abort(String reason) {
            aborted = true;
            queue.add(() -> {
                try {
                    KvChannel.this.abort(reservation, reason);
                } catch (IOException | RuntimeException e) {
                    // the receiver drops the reservation at its deadline anyway
                }
            });
        }

        private boolean inTime() {
            if (System.nanoTime() <= deadline) return true;
            fail(new TimeoutException("KV transfer of reservation " + reservation + " passed its deadline"));
            return false;
        }

        private void fail(Throwable t) {
            if (failure != null) return;
            failure = t;
            stats.failed();
            // The reservation stays: the router has the token worker recompute the KV (or it expires there).
            failed(t);
        }
    }
}
