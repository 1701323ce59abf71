package dev.tandem.cluster.device;

import dev.tandem.cuda.CudaDriver;
import dev.tandem.cuda.CudaException;
import dev.tandem.cuda.Nccl;
import dev.tandem.cuda.backend.CudaBackend;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import java.util.logging.Logger;

/**
 * NCCL between two GPUs, seen from the sending rank (0, the prompt worker): a two-rank communicator made from a
 * unique id that this side creates and hands to the receiving rank (in this process directly, in another over the
 * token worker's KV connection), and a send stream. Each gathered layer is one ncclSend; its header (reservation,
 * layer, blocks, deadline) goes to the receiving rank in order, which posts the matching ncclRecv
 * ({@link NcclReceiver}).
 *
 * <p>A stuck transfer (a peer that stopped receiving, a broken link) is found by polling the send stream against the
 * deadline and NCCL's asynchronous error; the path then aborts its communicator, which ends the pending kernels,
 * and stays broken: the sender's commit fails and the router recomputes the sequence on the token worker.
 */
final class NcclPath implements DevicePath {
    private static final Logger LOG = Logger.getLogger(NcclPath.class.getName());

    /** Where headers, commits and aborts go, in order: the receiving rank in this process, or a socket to it. */
    interface Deliveries {
        void layer(long reservation, int layer, int firstIndex, int n, long bytes, long deadlineNanos) throws IOException;

        void commit(long reservation, int[] tokens) throws IOException;

        void abort(long reservation, String reason) throws IOException;

        /** The path broke: the receiving rank aborts too (told directly, or by the connection's end). */
        void fail(String reason);

        /** No more messages: the receiving rank frees itself once it handled the last. */
        void close();

        /** Waits (a few seconds at most) until the receiving rank is freed, where that happens in this process. */
        default void awaitClosed() {}
    }

    private final CudaDriver cuda = CudaDriver.get();
    private final String receiver;
    private final GuardedComm comm;
    private final MemorySegment stream;
    private final Deliveries to;

    private NcclPath(String receiver, MemorySegment[] half, Deliveries to) {
        this.receiver = receiver;
        this.comm = new GuardedComm(half[0], "NCCL KV path to " + receiver);
        this.stream = half[1];
        this.to = to;
    }

    /** To a token worker of this process on another GPU: both ranks join here, on threads of their own. */
    static NcclPath local(CudaBackend sender, ReceivingEnd end, DeviceKvHub hub, Duration setupTimeout) {
        byte[] id = Nccl.get().uniqueId();
        String what = "NCCL set-up between cuda:" + sender.ordinal() + " and cuda:" + end.backend().ordinal() + " (" + end.address() + ")";
        CompletableFuture<MemorySegment[]> rank0 = rank(() -> NcclReceiver.join(sender, id, NcclReceiver.SENDER));
        CompletableFuture<MemorySegment[]> rank1 = rank(() -> NcclReceiver.join(end.backend(), id, NcclReceiver.RECEIVER));
        MemorySegment[] mine = await(rank0, setupTimeout, what);
        NcclReceiver r = new NcclReceiver(end, "cuda:" + sender.ordinal(), hub, await(rank1, setupTimeout, what));
        NcclPath path = new NcclPath(end.address(), mine, new LocalDeliveries(end.address(), r));
        r.onFailure(path::fail);
        return path;
    }

    /** Runs one rank's set-up on a thread of its own (ncclCommInitRank blocks until every rank joined). */
    static CompletableFuture<MemorySegment[]> rank(Supplier<MemorySegment[]> work) {
        CompletableFuture<MemorySegment[]> f = new CompletableFuture<>();
        Thread.ofPlatform().daemon().name("tandem-nccl-init").start(() -> {
            try {
                f.complete(work.get());
            } catch (Throwable t) {
                f.completeExceptionally(t);
            }
        });
        return f;
    }

    static MemorySegment[] await(CompletableFuture<MemorySegment[]> rank, Duration timeout, String what) {
        try {
            return rank.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw new CudaException(what + " failed: " + e.getCause().getMessage());
        } catch (java.util.concurrent.TimeoutException e) {
            throw new CudaException(what + " took over " + timeout);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CudaException(what + " was interrupted");
        }
    }

    /** A path whose receiving rank is elsewhere ({@link RemoteNccl}): this side's half is already joined. */
    static NcclPath of(String receiver, MemorySegment[] half, Deliveries to) { return new NcclPath(receiver, half, to); }

    @Override
    public MemorySegment sendStream() { return stream; }

    @Override
    public void layer(long reservation, int layer, int firstIndex, int n, long staging, long bytes, long deadlineNanos) {
        comm.check();
        try {
            to.layer(reservation, layer, firstIndex, n, bytes, deadlineNanos);
        } catch (IOException e) {
            fail("KV header to " + receiver + ": " + e.getMessage()); // the receiving rank is gone: so is this path
            throw new UncheckedIOException("KV header to " + receiver + ": " + e.getMessage(), e);
        }
        comm.send(staging, bytes, NcclReceiver.RECEIVER, stream);
    }

    @Override
    public void drain(long deadlineNanos) throws TimeoutException {
        StreamDeadline.await(cuda, stream, deadlineNanos, "NCCL send to " + receiver, comm::health);
    }

    @Override
    public void commit(long reservation, int[] tokens) {
        comm.check();
        try {
            to.commit(reservation, tokens);
        } catch (IOException e) {
            fail("KV commit to " + receiver + ": " + e.getMessage());
            throw new UncheckedIOException("KV commit to " + receiver + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void abort(long reservation, String reason) {
        try {
            to.abort(reservation, reason);
        } catch (IOException e) {
            // the receiver drops the reservation at its deadline anyway
        }
    }

    @Override
    public void fail(String reason) {
        if (comm.abort(reason)) to.fail(reason);
    }

    @Override
    public boolean healthy() { return comm.healthy(); }

    /** From the sending channel's thread at its end (drained, this GPU current); the receiving rank frees its side. */
    @Override
    public void close() {
        to.close();
        if (healthy()) {
            comm.destroy();
            cuda.destroyStream(stream);
        }
        to.awaitClosed();
    }

    /** The receiving rank in this process, on a thread of its own that handles messages in order. */
    private static final class LocalDeliveries implements Deliveries {
        private final NcclReceiver receiver;
        private final java.util.concurrent.LinkedBlockingQueue<Runnable> inbox = new java.util.concurrent.LinkedBlockingQueue<>();
        private final Thread thread;
        private volatile boolean closed;

        LocalDeliveries(String address, NcclReceiver receiver) {
            this.receiver = receiver;
            this.thread = Thread.ofPlatform().daemon().name("tandem-kv-nccl-recv-" + address).start(this::run);
        }

        private void run() {
            while (!closed || !inbox.isEmpty()) {
                try {
                    Runnable next = inbox.poll(100, TimeUnit.MILLISECONDS);
                    if (next != null) next.run();
                } catch (InterruptedException e) {
                    break;
                } catch (RuntimeException e) {
                    LOG.warning("NCCL KV receiver: " + e);
                }
            }
            receiver.close();
        }

        public void layer(long reservation, int layer, int firstIndex, int n, long bytes, long deadlineNanos) {
            inbox.add(() -> receiver.layer(reservation, layer, firstIndex, n, bytes, deadlineNanos));
        }

        public void commit(long reservation, int[] tokens) { inbox.add(() -> receiver.commit(reservation, tokens)); }

        public void abort(long reservation, String reason) { inbox.add(() -> receiver.abort(reservation, reason)); }

        public void fail(String reason) { receiver.fail(reason); }

        /** The receiving thread frees its rank within 100 ms, while the sender frees its own: ncclCommDestroy may wait for the peer. */
        public void close() { closed = true; }

        /** Before the cluster closes the token worker's backend. */
        public void awaitClosed() {
            try {
                thread.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
