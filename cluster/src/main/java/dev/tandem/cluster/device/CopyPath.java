package dev.tandem.cluster.device;

import dev.tandem.cuda.CudaDriver;
import dev.tandem.cuda.backend.CudaBackend;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeoutException;

/**
 * Prompt and token worker on one GPU (one context): the gathered layer is scattered straight into the reserved
 * blocks by a device-to-device kernel on the sender's stream, under the reservation's lock, and waited for against
 * the deadline, so a layer is in place when the call returns and nothing stays queued behind a failure.
 */
final class CopyPath implements DevicePath {
    private final CudaDriver cuda = CudaDriver.get();
    private final ReceivingEnd end;
    private final DeviceKvHub hub;
    private final MemorySegment stream;
    private final Staging receiverIds;
    private volatile String failure;

    /** Called with the sender's context current (it is the receiver's too). */
    CopyPath(CudaBackend sender, ReceivingEnd end, DeviceKvHub hub) {
        this.end = end;
        this.hub = hub;
        sender.useOnThisThread();
        this.stream = cuda.createStream();
        this.receiverIds = new Staging(cuda, stream);
    }

    @Override
    public MemorySegment sendStream() { return stream; }

    @Override
    public void layer(long reservation, int layer, int firstIndex, int n, long staging, long bytes, long deadlineNanos) throws TimeoutException {
        check();
        hub.stall();
        String what = "device copy of layer " + layer + " of reservation " + reservation + " to " + end.address();
        StreamDeadline.await(cuda, stream, deadlineNanos, what, null);
        try {
            end.receiver().writeBlocks(reservation, layer, firstIndex, n, bytes, blocks -> {
                end.backend().scatterKv(end.kv(), layer, receiverIds.ids(blocks), n, staging, stream);
                try {
                    StreamDeadline.await(cuda, stream, deadlineNanos, what, null);
                } catch (TimeoutException e) {
                    throw new IOException(e.getMessage(), e);
                }
            });
        } catch (IOException e) {
            if (e.getCause() instanceof TimeoutException t) throw t;
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Override
    public void drain(long deadlineNanos) throws TimeoutException {
        check();
        StreamDeadline.await(cuda, stream, deadlineNanos, "device copies to " + end.address(), null);
    }

    @Override
    public void commit(long reservation, int[] tokens) { end.receiver().commit(reservation, tokens); }

    @Override
    public void abort(long reservation, String reason) { end.receiver().abort(reservation, reason); }

    @Override
    public void fail(String reason) {
        if (failure == null) failure = reason;
    }

    @Override
    public boolean healthy() { return failure == null; }

    private void check() {
        if (failure != null) throw new IllegalStateException("the device path to " + end.address() + " failed earlier: " + failure);
    }

    @Override
    public void close() {
        if (!healthy()) return; // a copy may still be queued: leave the stream and buffers rather than free them under it
        receiverIds.close();
        cuda.destroyStream(stream);
    }
}
