package dev.tandem.engine.transport;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;

/**
 * The path to one receiver: a sender thread works through the streams' messages in the order they were queued,
 * so that a sequence's commit always follows its blocks. Subclasses say how a message travels.
 */
abstract class KvChannel implements AutoCloseable {
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

    protected abstract void block(long reservation, int layer, int index, MemorySegment keys, MemorySegment values) throws IOException;

    protected abstract void commit(long reservation, int[] tokens) throws IOException;

    protected abstract void abort(long reservation, String reason) throws IOException;

    /** Whether the channel can still carry messages (a broken connection is replaced by a new channel). */
    boolean usable() { return !closed; }

    /** Runs messages until the channel is closed and nothing is left: after a close they fail fast, and every commit still gets its answer. */
    private void drain() {
        while (!closed || !queue.isEmpty()) {
            try {
                Runnable next = queue.poll(100, TimeUnit.MILLISECONDS);
                if (next != null) next.run();
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    /** Stops taking messages; those queued still run (and fail if the path is gone), so no hand-over is left hanging. */
    @Override
    public void close() {
        closed = true;
    }

    KvStream stream(long reservation, HostKv source, long deadlineNanos) { return new Stream(reservation, source, deadlineNanos); }

    private final class Stream implements KvStream {
        private final long reservation;
        private final HostKv source;
        private final long deadline;
        /** Set once, by the sender thread; later messages of the stream are skipped. */
        private Throwable failure;
        private volatile boolean aborted;

        Stream(long reservation, HostKv source, long deadline) {
            this.reservation = reservation;
            this.source = source;
            this.deadline = deadline;
        }

        @Override
        public void sendLayer(int layer, int[] blocks, int firstIndex) {
            queue.add(() -> {
                if (failure != null || aborted || !inTime()) return;
                try {
                    busyUntil = deadline;
                    for (int i = 0; i < blocks.length; i++) {
                        block(reservation, layer, firstIndex + i, source.keys(layer, blocks[i]), source.values(layer, blocks[i]));
                        stats.sent(2 * source.blockBytes());
                    }
                } catch (IOException | RuntimeException e) {
                    fail(e);
                } finally {
                    busyUntil = 0;
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
                        KvChannel.this.commit(reservation, tokens);
                        stats.handedOver(System.nanoTime() - queued);
                    } catch (IOException | RuntimeException e) {
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
        }
    }
}
