package dev.tandem.offload.exec;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.Weight;
import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.cuda.backend.CudaOffload;

import java.lang.foreign.MemorySegment;

/**
 * The CUDA path: weights resident on the GPU or streamed from pinned host memory into double-buffered slots on a copy
 * stream, ordered with the compute stream by events, under a cap on the GPU memory the run may use. Streamed weights
 * and the KV cache take the backend's precision (bf16 by default; f32 for checking against f32 references).
 */
public final class CudaOffloadDevice implements OffloadDevice {
    private final CudaBackend backend;
    private final CudaOffload offload;
    private final HostMemory host;
    private final long gpuCap, baseline;

    /** @param gpuCap device bytes this run may hold (weights, slots, activations, caches, scratch) */
    public CudaOffloadDevice(CudaBackend backend, long gpuCap, long cpuCap) {
        this.backend = backend;
        this.offload = new CudaOffload(backend);
        this.gpuCap = gpuCap;
        this.baseline = backend.allocatedBytes();
        this.host = new HostMemory(cpuCap) {
            @Override
            protected MemorySegment allocateRaw(long bytes) {
                // Not zeroed: every byte (cache positions, staged weights, hidden states) is written before it is read.
                return offload.pinned(bytes);
            }

            @Override
            public void close() {}
        };
    }

    @Override
    public Backend backend() { return backend; }

    @Override
    public HostMemory host() { return host; }

    @Override
    public boolean hostOnly() { return false; }

    private void checkCap(String what) {
        long used = deviceBytes();
        if (used > gpuCap) {
            throw new OffloadException(String.format("GPU memory cap exceeded after allocating %s: %,d bytes in use, cap %,d; "
                    + "give more --gpu-mem or choose a policy with less on the GPU", what, used, gpuCap));
        }
    }

    @Override
    public Weight resident(Tensor matrix) {
        Weight w = backend.upload(matrix);
        checkCap(matrix.name());
        return w;
    }

    @Override
    public long streamedBytes(MatrixShape matrix) { return offload.weightType().bytesFor(matrix.elements()); }

    @Override
    public void toStreamed(Tensor matrix, MemorySegment dst) {
        DType t = offload.weightType();
        if (matrix.dtype() == t) {
            MemorySegment.copy(matrix.data(), 0, dst, 0, matrix.data().byteSize());
            return;
        }
        int cols = matrix.cols();
        float[] row = new float[cols];
        for (long r = 0; r < matrix.rows(); r++) {
            Codec.decode(matrix.dtype(), matrix.data(), r * cols, row, 0, cols);
            Codec.encode(t, row, 0, cols, dst, t.bytesFor(r * cols));
        }
    }

    private record CudaSlot(Weight weight) implements Slot {}

    @Override
    public Slot slot(MatrixShape matrix) {
        Weight w = offload.weightSlot(matrix.name() + " (slot)", matrix.rows(), matrix.cols());
        checkCap("a weight slot for " + matrix.name());
        return new CudaSlot(w);
    }

    @Override
    public void load(Slot slot, MatrixShape shape, MemorySegment src) { offload.loadAsync(slot.weight(), src, 0); }

    @Override
    public Object loadsIssued() {
        MemorySegment e = offload.event();
        offload.recordOnCopyStream(e);
        return e;
    }

    @Override
    public void hostWait(Object handle) { offload.synchronize((MemorySegment) handle); }

    @Override
    public void computeAfter(Object loads) { offload.computeWaits((MemorySegment) loads); }

    @Override
    public Object computeIssued() {
        MemorySegment e = offload.event();
        offload.recordOnComputeStream(e);
        return e;
    }

    @Override
    public void loadsAfter(Object compute) { offload.copyWaits((MemorySegment) compute); }

    @Override
    public void toHost(Activation x, int rows, MemorySegment dst, long offset) { offload.toHostAsync(x, rows, dst, offset); }

    @Override
    public void fromHost(MemorySegment src, long offset, Activation x, int rows) { offload.fromHostAsync(src, offset, x, rows); }

    @Override
    public void kvToHost(KvStorage kv, int layer, long firstSlot, int count, HostKvCache cache, int cacheLayer, int sequence, int position) {
        long at = cache.offset(sequence, position);
        offload.kvToHostAsync(kv, layer, firstSlot, count, cache.keys(cacheLayer), at, cache.values(cacheLayer), at);
    }

    @Override
    public void kvFromHost(HostKvCache cache, int cacheLayer, int sequence, int position, int count, KvStorage kv, int layer, long firstSlot) {
        long at = cache.offset(sequence, position);
        offload.kvFromHostAsync(cache.keys(cacheLayer), at, cache.values(cacheLayer), at, kv, layer, firstSlot, count);
    }

    @Override
    public int kvElementBytes() { return backend.precision() == CudaBackend.Precision.F32 ? 4 : 2; }

    @Override
    public void synchronize() { offload.synchronize(); }

    @Override
    public long deviceBytes() { return backend.allocatedBytes() - baseline; }

    /** Checks the cap after the run's buffers are allocated (activations and caches come from the backend directly). */
    public void checkCap() { checkCap("the run's buffers"); }

    @Override
    public void close() { offload.close(); }
}
