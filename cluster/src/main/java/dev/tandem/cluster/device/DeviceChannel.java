package dev.tandem.cluster.device;

import dev.tandem.core.backend.KvStorage;
import dev.tandem.cuda.CudaDriver;
import dev.tandem.cuda.CudaException;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.engine.transport.KvChannel;
import dev.tandem.engine.transport.KvTransferStats;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeoutException;

/**
 * A prompt worker's device path to one token worker. A layer's send is ordered after that layer's KV write without
 * blocking the engine: on the engine thread, where the forward pass hands the layer over, an event is recorded on
 * the compute stream; the sender thread makes the send stream wait for it on the device, gathers the sequence's
 * blocks of the layer into staging (they are not contiguous) and hands them to the path. The commit waits, against
 * the deadline, for every send to have left this GPU; a wait that times out or a failed call aborts the path.
 */
final class DeviceChannel extends KvChannel {
    private final CudaDriver cuda = CudaDriver.get();
    private final CudaBackend backend;
    private final DevicePath path;
    /** The sender thread's gather buffers (from its first message on). */
    private Staging staging;

    DeviceChannel(String address, CudaBackend backend, DevicePath path, KvTransferStats stats) {
        super("device-" + address, stats);
        this.backend = backend;
        this.path = path;
    }

    @Override
    public boolean usable() { return super.usable() && path.healthy(); }

    @Override
    protected void senderStarted() {
        backend.useOnThisThread();
        staging = new Staging(cuda, path.sendStream());
    }

    @Override
    protected void senderStopped() {
        backend.useOnThisThread();
        // Sends of hand-overs that were aborted (no commit waited for them) may still be queued: wait before freeing.
        // After a failure a gather may stay queued for good: then the buffers are left alone.
        if (staging != null && path.healthy()) {
            try {
                path.drain(System.nanoTime() + 10_000_000_000L);
                staging.close();
            } catch (TimeoutException | RuntimeException e) {
                path.fail("closing the channel: " + e.getMessage());
            }
        }
        try {
            path.close();
        } catch (RuntimeException e) {
            java.util.logging.Logger.getLogger(DeviceChannel.class.getName()).warning("closing the device KV path: " + e.getMessage());
        }
    }

    /** On the engine thread: the point of the compute stream where this layer's KV write was queued. */
    @Override
    protected Object mark() {
        MemorySegment written = cuda.createEvent();
        cuda.recordEvent(written, backend.stream());
        return written;
    }

    @Override
    protected void release(Object mark) { cuda.destroyEvent((MemorySegment) mark); }

    @Override
    protected long layer(long reservation, KvStorage source, int layer, int[] blocks, int firstIndex, Object mark, long deadline) throws TimeoutException {
        MemorySegment s = path.sendStream();
        cuda.waitEvent(s, (MemorySegment) mark);
        long bytes = 2L * blocks.length * backend.kvBlockBytes(source);
        long data = staging.data(bytes);
        backend.gatherKv(source, layer, staging.ids(blocks), blocks.length, data, s);
        path.layer(reservation, layer, firstIndex, blocks.length, data, bytes, deadline);
        return bytes;
    }

    @Override
    protected void commit(long reservation, int[] tokens, long deadline) throws TimeoutException {
        path.drain(deadline);
        path.commit(reservation, tokens);
    }

    @Override
    protected void abort(long reservation, String reason) { path.abort(reservation, reason); }

    /** A wait that timed out or a failed CUDA / NCCL call may leave transfers stuck: abort the path (its communicator). */
    @Override
    protected void failed(Throwable failure) {
        if (failure instanceof TimeoutException || failure instanceof CudaException) path.fail(failure.getMessage());
    }
}
