package dev.tandem.cluster.device;

import dev.tandem.core.backend.KvStorage;
import dev.tandem.cuda.CudaDriver;
import dev.tandem.cuda.CudaException;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.engine.transport.KvStream;
import dev.tandem.engine.transport.KvTransferStats;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;

/**
 * A prompt worker's device path to one token worker, with a sender thread that works through the streams'
 * messages in order. A layer's send is ordered after that layer's KV write without blocking the engine: the engine
 * thread records an event on its compute stream where the hook is called, and the send stream waits for the event
 * on the device, gathers the sequence's blocks of the layer into staging (they are not contiguous) and hands them
 * to the path. The commit waits, against the deadline, for every send to have left this GPU.
 */
final class DeviceChannel implements AutoCloseable {
    private final CudaDriver cuda = CudaDriver.get();
    private final CudaBackend backend;
    private final DevicePath path;
    private final KvTransferStats stats;
    private final LinkedBlockingQueue<Runnable> queue = new LinkedBlockingQueue<>();
    private final Thread sender;
    /** The sender thread's gather buffers. */
    private Staging staging;
    private volatile boolean closed;

    DeviceChannel(String address, CudaBackend backend, DevicePath path, KvTransferStats stats) {
        this.backend = backend;
        this.path = path;
        this.stats = stats;
        this.sender = Thread.ofPlatform().daemon().name("tandem-kv-device-send-" + address).start(this::drain);
    }

    /** Whether new hand-overs may use this channel (a broken path is replaced by a new channel). */
    boolean usable() { return !closed && path.healthy(); }

    private void drain() {
        backend.useOnThisThread();
        staging = new Staging(cuda, path.sendStream());
        while (!closed || !queue.isEmpty()) {
            try {
                Runnable next = queue.poll(100, TimeUnit.MILLISECONDS);
                if (next != null) next.run();
            } catch (InterruptedException e) {
                break;
            }
        }
        if (path.healthy()) staging.close();
        path.close();
    }

    /** Stops taking messages; those queued still run, then the path is closed on the sender thread. */
    @Override
    public void close() { closed = true; }

    /** Waits for the sender thread to finish (after {@link #close}). */
    void join(long millis) throws InterruptedException { sender.join(millis); }

    KvStream stream(long reservation, KvStorage source, long blockBytes, long deadlineNanos) {
        return new Stream(reservation, source, blockBytes, deadlineNanos);
    }

    private final class Stream implements KvStream {
        private final long reservation;
        private final KvStorage source;
        private final long blockBytes;
        private final long deadline;
        /** Set once, by the sender thread; later messages of the stream are skipped. */
        private volatile Throwable failure;
        private volatile boolean aborted;

        Stream(long reservation, KvStorage source, long blockBytes, long deadline) {
            this.reservation = reservation;
            this.source = source;
            this.blockBytes = blockBytes;
            this.deadline = deadline;
        }

        /** On the engine thread, inside the forward pass: the layer's KV write is queued on the compute stream, not done. */
        @Override
        public void sendLayer(int layer, int[] blocks, int firstIndex) {
            if (failure != null || aborted) return;
            MemorySegment written = cuda.createEvent();
            cuda.recordEvent(written, backend.stream());
            queue.add(() -> {
                try {
                    if (failure != null || aborted || !inTime()) return;
                    MemorySegment s = path.sendStream();
                    cuda.streamWaitEvent(s, written);
                    long bytes = 2L * blocks.length * blockBytes;
                    long data = staging.data(bytes);
                    backend.gatherKv(source, layer, staging.ids(blocks), blocks.length, data, s);
                    path.layer(reservation, layer, firstIndex, blocks.length, data, bytes, deadline);
                    stats.sent(bytes);
                } catch (TimeoutException | RuntimeException e) {
                    fail(e);
                } finally {
                    cuda.destroyEvent(written);
                }
            });
        }

        @Override
        public void commit(int[] tokens, Consumer<Throwable> done) {
            if (closed && !sender.isAlive()) {
                done.accept(new IOException("the device KV channel is closed"));
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
                        path.drain(deadline);
                        path.commit(reservation, tokens);
                        stats.handedOver(System.nanoTime() - queued);
                    } catch (TimeoutException | RuntimeException e) {
                        fail(e);
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
                    path.abort(reservation, reason);
                } catch (RuntimeException e) {
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
            // A wait that timed out or a failed CUDA/NCCL call may leave transfers stuck: abort the path (and its
            // communicator). The reservation stays: the router has the token worker recompute the KV.
            if (t instanceof TimeoutException || t instanceof CudaException) path.fail(t.getMessage());
        }
    }
}
