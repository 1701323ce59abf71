package dev.tandem.cluster.device;

import dev.tandem.cuda.CudaDriver;
import dev.tandem.cuda.CudaException;
import dev.tandem.cuda.Nccl;
import dev.tandem.cuda.backend.CudaBackend;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;
import java.util.logging.Logger;

/**
 * NCCL between two GPUs: a two-rank communicator (the prompt worker rank 0, the token worker rank 1) made from a
 * unique id handed from one rank to the other, one send stream and one receive stream. Each gathered layer is one
 * ncclSend; its header (reservation, layer, blocks) goes to the receiving thread in order, which posts the matching
 * ncclRecv into its staging, waits for it against the deadline and scatters it into the reserved blocks.
 *
 * <p>A stuck transfer (a peer that stopped receiving, a broken link) is found by polling events with deadlines and
 * NCCL's asynchronous error; the path then aborts both communicators, which ends their pending kernels, and stays
 * broken: the sender's commit fails and the router recomputes the sequence on the token worker.
 */
final class NcclPath implements DevicePath {
    private static final Logger LOG = Logger.getLogger(NcclPath.class.getName());
    private static final int SENDER = 0, RECEIVER = 1;

    private final CudaDriver cuda = CudaDriver.get();
    private final Nccl nccl = Nccl.get();
    /** The sender's device, for messages. */
    private final String peer;
    private final ReceivingEnd end;
    private final DeviceKvHub hub;
    private final MemorySegment sendComm, recvComm, sendStream, recvStream;
    /** NCCL calls and the abort exclude each other: no call reaches a communicator being (or already) aborted. */
    private final ReentrantLock calls = new ReentrantLock();
    private final LinkedBlockingQueue<Runnable> inbox = new LinkedBlockingQueue<>();
    private final Thread receiving;
    private volatile String failure;
    private volatile boolean closed;

    private NcclPath(String peer, ReceivingEnd end, DeviceKvHub hub, MemorySegment[] sender, MemorySegment[] receiver) {
        this.peer = peer;
        this.end = end;
        this.hub = hub;
        this.sendComm = sender[0];
        this.sendStream = sender[1];
        this.recvComm = receiver[0];
        this.recvStream = receiver[1];
        this.receiving = Thread.ofPlatform().daemon().name("tandem-kv-nccl-recv-" + end.address()).start(this::receive);
    }

    /**
     * Sets up the communicator between {@code sender}'s GPU and the receiver's: the unique id goes from rank 0 to
     * rank 1 (in this process: directly), each rank joins on a thread with its device current, and one small
     * exchange in each direction makes NCCL connect now rather than inside the first hand-over.
     */
    static NcclPath open(CudaBackend sender, ReceivingEnd end, DeviceKvHub hub, Duration setupTimeout) {
        Nccl nccl = Nccl.get();
        byte[] id = nccl.uniqueId();
        CompletableFuture<MemorySegment[]> rank0 = rank(() -> join(sender, id, SENDER));
        CompletableFuture<MemorySegment[]> rank1 = rank(() -> join(end.backend(), id, RECEIVER));
        try {
            return new NcclPath("cuda:" + sender.ordinal(), end, hub, rank0.get(setupTimeout.toMillis(), TimeUnit.MILLISECONDS), rank1.get(setupTimeout.toMillis(), TimeUnit.MILLISECONDS));
        } catch (ExecutionException e) {
            throw new CudaException("NCCL set-up between cuda:" + sender.ordinal() + " and cuda:" + end.backend().ordinal() + " ("
                    + end.address() + ") failed: " + e.getCause().getMessage());
        } catch (TimeoutException e) {
            throw new CudaException("NCCL set-up between cuda:" + sender.ordinal() + " and cuda:" + end.backend().ordinal() + " took over " + setupTimeout);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CudaException("interrupted while setting up NCCL");
        }
    }

    private static CompletableFuture<MemorySegment[]> rank(Supplier<MemorySegment[]> work) {
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

    /** One rank's half: communicator and stream, connected to the peer by a 256-byte exchange both ways. */
    private static MemorySegment[] join(CudaBackend backend, byte[] id, int rank) {
        CudaDriver cuda = CudaDriver.get();
        Nccl nccl = Nccl.get();
        backend.useOnThisThread();
        MemorySegment comm = nccl.initRank(2, id, rank);
        MemorySegment stream = cuda.createStream();
        long buf = cuda.malloc(512);
        try {
            nccl.groupStart();
            nccl.send(buf, 256, 1 - rank, comm, stream);
            nccl.recv(buf + 256, 256, 1 - rank, comm, stream);
            nccl.groupEnd();
            cuda.synchronize(stream);
        } finally {
            cuda.free(buf);
        }
        return new MemorySegment[] {comm, stream};
    }

    @Override
    public MemorySegment sendStream() { return sendStream; }

    @Override
    public void layer(long reservation, int layer, int firstIndex, int n, long staging, long bytes, long deadlineNanos) {
        calls.lock();
        try {
            check();
            inbox.add(() -> receiveLayer(reservation, layer, firstIndex, n, bytes, deadlineNanos));
            nccl.send(staging, bytes, RECEIVER, sendComm, sendStream);
        } finally {
            calls.unlock();
        }
    }

    @Override
    public void drain(long deadlineNanos) throws TimeoutException {
        StreamDeadline.await(cuda, sendStream, deadlineNanos, "NCCL send to " + end.address(), () -> health(sendComm, "sending"));
    }

    @Override
    public void commit(long reservation, int[] tokens) {
        check();
        inbox.add(() -> {
            // After a failure the blocks may be incomplete: no adoption; the router recomputes or the reservation expires.
            if (failure != null) return;
            try {
                end.receiver().commit(reservation, tokens);
            } catch (RuntimeException e) {
                LOG.fine("NCCL KV receiver: commit of reservation " + reservation + " refused: " + e.getMessage());
            }
        });
    }

    @Override
    public void abort(long reservation, String reason) { inbox.add(() -> end.receiver().abort(reservation, reason)); }

    @Override
    public void fail(String reason) {
        calls.lock();
        try {
            if (failure != null) return;
            failure = reason;
            LOG.warning("NCCL KV path to " + end.address() + " aborted: " + reason);
            for (MemorySegment comm : new MemorySegment[] {sendComm, recvComm}) {
                try {
                    nccl.abort(comm);
                } catch (CudaException e) {
                    LOG.warning("ncclCommAbort: " + e.getMessage());
                }
            }
        } finally {
            calls.unlock();
        }
    }

    @Override
    public boolean healthy() { return failure == null; }

    private void check() {
        if (failure != null) throw new IllegalStateException("the NCCL path to " + end.address() + " failed earlier: " + failure);
    }

    private void health(MemorySegment comm, String what) {
        calls.lock();
        try {
            check();
            nccl.checkAsync(comm, what + " KV to " + end.address());
        } finally {
            calls.unlock();
        }
    }

    // --- the receiving rank's thread ----------------------------------------------------------------------------

    private void receive() {
        end.backend().useOnThisThread();
        staging = new Staging(cuda, recvStream);
        while (!closed || !inbox.isEmpty()) {
            try {
                Runnable next = inbox.poll(100, TimeUnit.MILLISECONDS);
                if (next != null) next.run();
            } catch (InterruptedException e) {
                break;
            } catch (RuntimeException e) {
                LOG.warning("NCCL KV receiver for " + end.address() + ": " + e);
            }
        }
        if (healthy()) {
            nccl.destroy(recvComm);
            staging.close();
            cuda.destroyStream(recvStream);
        }
    }

    /** The receiving thread's buffers. */
    private Staging staging;

    private void receiveLayer(long reservation, int layer, int firstIndex, int n, long bytes, long deadlineNanos) {
        if (failure != null) return;
        hub.stall();
        Staging s = staging;
        String what = "NCCL receipt of layer " + layer + " of reservation " + reservation + " from " + peer;
        try {
            long buf = s.data(bytes);
            boolean written = end.receiver().writeBlocks(reservation, layer, firstIndex, n, bytes, blocks -> {
                long ids = s.ids(blocks);
                receiveInto(buf, bytes, deadlineNanos, what);
                end.backend().scatterKv(end.kv(), layer, ids, n, buf, recvStream);
                awaitReceive(deadlineNanos, what);
            });
            // A reservation that stopped waiting still takes the bytes: NCCL pairs sends and receives in order.
            if (!written) receiveInto(buf, bytes, deadlineNanos, what);
        } catch (IOException | RuntimeException e) {
            fail(what + ": " + (e.getCause() instanceof TimeoutException t ? t.getMessage() : e.getMessage()));
        }
    }

    private void receiveInto(long buf, long bytes, long deadlineNanos, String what) throws IOException {
        calls.lock();
        try {
            check();
            nccl.recv(buf, bytes, SENDER, recvComm, recvStream);
        } finally {
            calls.unlock();
        }
        awaitReceive(deadlineNanos, what);
    }

    private void awaitReceive(long deadlineNanos, String what) throws IOException {
        try {
            StreamDeadline.await(cuda, recvStream, deadlineNanos, what, () -> health(recvComm, "receiving"));
        } catch (TimeoutException e) {
            throw new IOException(e.getMessage(), e);
        }
    }

    /** From the sending channel's thread at its end (the sender's device current); the receiving thread frees its side. */
    @Override
    public void close() {
        closed = true;
        if (healthy()) {
            nccl.destroy(sendComm);
            cuda.destroyStream(sendStream);
        }
        try {
            receiving.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
