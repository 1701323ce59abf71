package dev.tandem.cuda.backend;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.Weight;
import dev.tandem.core.tensor.DType;
import dev.tandem.cuda.CudaDriver;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * What an offloaded (FlexGen-style) run needs from the CUDA backend beyond the {@code Backend} ops: page-locked host
 * memory, weight slots that a copy stream refills while the compute stream works, events between the two streams,
 * and copies of activations and KV-cache slots between the device and the host.
 *
 * <p>Weights are loaded on a stream of their own, so that the next layer's weights cross PCIe while this layer
 * computes; activations and cache slots move on the compute stream, ordered with the ops around them.
 */
public final class CudaOffload implements AutoCloseable {
    private final CudaBackend backend;
    private final CudaDriver cuda;
    private final MemorySegment copyStream;
    private final List<MemorySegment> pinned = new ArrayList<>();
    private final List<MemorySegment> events = new ArrayList<>();

    public CudaOffload(CudaBackend backend) {
        this.backend = backend;
        this.cuda = backend.driver();
        backend.makeCurrent();
        this.copyStream = cuda.createStream();
    }

    public CudaBackend backend() { return backend; }

    /**
     * Makes the backend's context current on the calling thread: the copy-stream calls below assume it, and a thread that
     * drives one GPU of several (a pipeline stage) calls this before its first one.
     */
    public void bindThread() { backend.makeCurrent(); }

    /** Page-locked host memory, released when this closes. */
    public MemorySegment pinned(long bytes) {
        backend.makeCurrent();
        MemorySegment m = cuda.hostAlloc(Math.max(bytes, 64));
        pinned.add(m);
        return m;
    }

    /** The type the backend's matmuls take weights in: bf16, or f32 at f32 precision. */
    public DType weightType() { return backend.precision() == CudaBackend.Precision.F32 ? DType.F32 : DType.BF16; }

    /** A rows x cols weight of {@link #weightType()} on the device whose contents {@link #loadAsync} replaces. */
    public Weight weightSlot(String name, int rows, int cols) {
        backend.makeCurrent();
        DType t = weightType();
        long ptr = backend.allocate(t.bytesFor((long) rows * cols));
        return new CudaBackend.CudaWeight(name, t, rows, cols, ptr);
    }

    /** Starts copying {@code slot}'s bytes (row-major, its type) from pinned host memory at {@code offset}, on the copy stream. */
    public void loadAsync(Weight slot, MemorySegment host, long offset) {
        CudaBackend.CudaWeight w = (CudaBackend.CudaWeight) slot;
        long bytes = w.dtype().bytesFor((long) w.rows() * w.cols());
        cuda.copyToDeviceAsync(w.ptr(), host.asSlice(offset, bytes), bytes, copyStream);
    }

    public MemorySegment event() {
        backend.makeCurrent();
        MemorySegment e = cuda.createEvent();
        events.add(e);
        return e;
    }

    public void recordOnCopyStream(MemorySegment event) { cuda.recordEvent(event, copyStream); }

    public void recordOnComputeStream(MemorySegment event) { cuda.recordEvent(event, backend.computeStream()); }

    /** Compute queued from now on starts after the event (e.g. a layer's weights arrived). */
    public void computeWaits(MemorySegment event) { cuda.waitEvent(backend.computeStream(), event); }

    /** Copies queued from now on start after the event (e.g. the compute that read a slot finished). */
    public void copyWaits(MemorySegment event) { cuda.waitEvent(copyStream, event); }

    /** Copies the first {@code rows} rows of a contiguous f32 activation to host memory, on the compute stream. */
    public void toHostAsync(Activation x, int rows, MemorySegment host, long offset) {
        CudaBackend.CudaActivation a = (CudaBackend.CudaActivation) x;
        if (!a.contiguous()) throw new IllegalArgumentException("only whole activations are copied to the host");
        if (a.buf().f32Stale) throw new IllegalStateException("this activation holds only a bf16 GEMM input");
        long bytes = 4L * rows * a.cols();
        cuda.copyToHostAsync(host.asSlice(offset, bytes), a.f32(), bytes, backend.computeStream());
    }

    /** Copies f32 rows from host memory into the first {@code rows} rows of a contiguous activation, on the compute stream. */
    public void fromHostAsync(MemorySegment host, long offset, Activation x, int rows) {
        CudaBackend.CudaActivation a = (CudaBackend.CudaActivation) x;
        if (!a.contiguous()) throw new IllegalArgumentException("only whole activations are copied from the host");
        long bytes = 4L * rows * a.cols();
        cuda.copyToDeviceAsync(a.f32(), host.asSlice(offset, bytes), bytes, backend.computeStream());
        CudaBackend.wrote(a, false);
    }

    /** Bytes per element of a KV cache this backend allocated (2 for bf16, 4 for f32). */
    public int kvElementBytes(KvStorage kv) { return ((CudaBackend.CudaKv) kv).elementBytes(); }

    /** Device address of a KV slot's keys (or values) in a cache this backend allocated. */
    public long kvAddress(KvStorage kv, int layer, long slot, boolean values) {
        CudaBackend.CudaKv c = (CudaBackend.CudaKv) kv;
        return (values ? c.values(layer) : c.keys(layer)) + slot * c.layout().kvDim() * c.elementBytes();
    }

    /** Raw device memory of this backend, counted with its other allocations. */
    public long deviceBuffer(long bytes) {
        backend.makeCurrent();
        return backend.allocate(bytes);
    }

    /** Frees a {@link #deviceBuffer} (the caller makes sure no queued work still uses it). */
    public void freeDeviceBuffer(long ptr) {
        backend.makeCurrent();
        backend.free(ptr);
    }

    /** Device to host, on the compute stream. */
    public void toHostAsync(long src, MemorySegment host, long offset, long bytes) {
        cuda.copyToHostAsync(host.asSlice(offset, bytes), src, bytes, backend.computeStream());
    }

    /** Host to device, on the compute stream. */
    public void fromHostAsync(MemorySegment host, long offset, long dst, long bytes) {
        cuda.copyToDeviceAsync(dst, host.asSlice(offset, bytes), bytes, backend.computeStream());
    }

    /**
     * {@code rows} runs of {@code width} bytes from host memory (run i at {@code offset + i * hostPitch}) to the device
     * (run i at {@code dst + i * dstPitch}), on the compute stream, in one call.
     */
    public void fromHost2DAsync(MemorySegment host, long offset, long hostPitch, long dst, long dstPitch, long width, int rows) {
        if (rows == 0) return;
        cuda.copy2DAsync(host.asSlice(offset, (rows - 1) * hostPitch + width), 0, hostPitch, null, dst, dstPitch, width, rows,
                backend.computeStream());
    }

    /** The inverse of {@link #fromHost2DAsync}: device runs at {@code src + i * srcPitch} to host runs at {@code offset + i * hostPitch}. */
    public void toHost2DAsync(long src, long srcPitch, MemorySegment host, long offset, long hostPitch, long width, int rows) {
        if (rows == 0) return;
        cuda.copy2DAsync(null, src, srcPitch, host.asSlice(offset, (rows - 1) * hostPitch + width), 0, hostPitch, width, rows,
                backend.computeStream());
    }

    /** Host to device, on the copy stream (compressed weights land in a staging buffer first). */
    public void loadBytesAsync(MemorySegment host, long offset, long dst, long bytes) {
        cuda.copyToDeviceAsync(dst, host.asSlice(offset, bytes), bytes, copyStream);
    }

    /** Device address of a weight this backend made. */
    public long weightAddress(Weight w) { return ((CudaBackend.CudaWeight) w).ptr(); }

    /** Waits for everything queued on the compute stream. */
    public void synchronize() {
        backend.makeCurrent();
        cuda.synchronize(backend.computeStream());
    }

    /** Blocks until the work before the event's record is done. */
    public void synchronize(MemorySegment event) {
        backend.makeCurrent();
        cuda.synchronizeEvent(event);
    }

    public void synchronizeCopies() {
        backend.makeCurrent();
        cuda.synchronize(copyStream);
    }

    @Override
    public void close() {
        backend.makeCurrent();
        cuda.synchronize(copyStream);
        for (MemorySegment e : events) cuda.destroyEvent(e);
        for (MemorySegment m : pinned) cuda.freeHost(m);
        events.clear();
        pinned.clear();
        cuda.destroyStream(copyStream);
    }
}
