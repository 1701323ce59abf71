package dev.tandem.cluster.device;

import dev.tandem.cuda.CudaDriver;
import dev.tandem.cuda.Nccl;
import dev.tandem.cuda.backend.CudaBackend;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeoutException;

/**
 * The receiving rank (1) of an NCCL KV path, on the token worker's GPU: for each layer header, in the order the
 * sender sent, it posts the matching ncclRecv into staging, waits for it against the deadline (and NCCL's
 * asynchronous error), then scatters it into the reserved blocks under the reservation's lock. A reservation that
 * stopped waiting still takes the bytes (NCCL pairs sends and receives in order). A wait that times out or a failed
 * call aborts the communicator, which ends the stuck receive. All calls come from one thread, with this GPU current.
 */
final class NcclReceiver {
    private static final java.util.logging.Logger LOG = java.util.logging.Logger.getLogger(NcclReceiver.class.getName());
    static final int SENDER = 0, RECEIVER = 1;

    private final CudaDriver cuda = CudaDriver.get();
    private final ReceivingEnd end;
    private final String peer;
    private final DeviceKvHub hub;
    private final GuardedComm comm;
    private final MemorySegment stream;
    private Staging staging;
    /** Told when this rank aborts first, so that the sending rank stops sending into a dead communicator. */
    private volatile java.util.function.Consumer<String> onFailure = reason -> {};

    /** @param half this rank's communicator and stream (from {@link #join}) */
    NcclReceiver(ReceivingEnd end, String peer, DeviceKvHub hub, MemorySegment[] half) {
        this.end = end;
        this.peer = peer;
        this.hub = hub;
        this.comm = new GuardedComm(half[0], "NCCL KV receiver for " + end.address() + " (from " + peer + ")");
        this.stream = half[1];
    }

    /**
     * One rank's half of a two-rank communicator: joins with {@code backend}'s GPU current (blocks until the peer
     * joined too), makes a stream, and exchanges 256 bytes each way so that NCCL connects now rather than inside the
     * first hand-over.
     */
    static MemorySegment[] join(CudaBackend backend, byte[] id, int rank) {
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

    boolean healthy() { return comm.healthy(); }

    void layer(long reservation, int layer, int firstIndex, int n, long bytes, long deadlineNanos) {
        if (!healthy()) return;
        hub.stall();
        if (!healthy()) return;
        end.backend().useOnThisThread();
        if (staging == null) staging = new Staging(cuda, stream);
        Staging s = staging;
        String what = "NCCL receipt of layer " + layer + " of reservation " + reservation + " from " + peer;
        try {
            long buf = s.data(bytes);
            boolean written = end.receiver().writeBlocks(reservation, layer, firstIndex, n, bytes, blocks -> {
                long ids = s.ids(blocks);
                receiveInto(buf, bytes, deadlineNanos, what);
                end.backend().scatterKv(end.kv(), layer, ids, n, buf, stream);
                await(deadlineNanos, what);
            });
            if (!written) receiveInto(buf, bytes, deadlineNanos, what);
        } catch (IOException | RuntimeException e) {
            fail(what + ": " + (e.getCause() instanceof TimeoutException t ? t.getMessage() : e.getMessage()));
        }
    }

    /** After the sequence's layers: it joins the token worker's batch; after a failure its blocks may be incomplete, so not. */
    void commit(long reservation, int[] tokens) {
        if (!healthy()) return;
        try {
            end.receiver().commit(reservation, tokens);
        } catch (RuntimeException e) {
            LOG.fine("NCCL KV receiver: commit of reservation " + reservation + " refused: " + e.getMessage());
        }
    }

    void abort(long reservation, String reason) { end.receiver().abort(reservation, reason); }

    private void receiveInto(long buf, long bytes, long deadlineNanos, String what) throws IOException {
        comm.recv(buf, bytes, SENDER, stream);
        await(deadlineNanos, what);
    }

    private void await(long deadlineNanos, String what) throws IOException {
        try {
            StreamDeadline.await(cuda, stream, deadlineNanos, what, comm::health);
        } catch (TimeoutException e) {
            throw new IOException(e.getMessage(), e);
        }
    }

    /**
     * Aborts the communicator (from any thread): a receive stuck on it ends, later calls fail at once. A failure found
     * here first (a receive past its deadline) is passed on: the sending rank would otherwise see a healthy path and
     * send the next hand-overs into the aborted communicator.
     */
    void fail(String reason) {
        if (comm.abort(reason)) onFailure.accept("the receiving rank failed: " + reason);
    }

    /** Where a failure of this rank is passed to the sender (in this process its path, across processes the connection). */
    void onFailure(java.util.function.Consumer<String> hook) { this.onFailure = hook; }

    /** On the receiving thread, once no message is left: frees this rank (after a failure the stream may be stuck: left alone). */
    void close() {
        if (!healthy()) return;
        end.backend().useOnThisThread();
        comm.destroy();
        if (staging != null) staging.close();
        cuda.destroyStream(stream);
    }
}
