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
    private final dev.tandem.cuda.backend.CudaGq4 gq4;
    private boolean compress;
    private dev.tandem.core.quant.GroupQuant4.Range range = dev.tandem.core.quant.WeightCompression.DEFAULT_RANGE;
    /** Device staging for compressed KV slots on their way to or from the host (grown on demand). */
    private long kvPacked, kvPackedBytes;

    /** @param gpuCap device bytes this run may hold (weights, slots, activations, caches, scratch) */
    public CudaOffloadDevice(CudaBackend backend, long gpuCap, long cpuCap) {
        this.backend = backend;
        this.offload = new CudaOffload(backend);
        this.gpuCap = gpuCap;
        this.baseline = backend.allocatedBytes();
        this.gq4 = new dev.tandem.cuda.backend.CudaGq4(backend);
        this.host = new HostMemory(cpuCap) {
            @Override
            protected MemorySegment allocateRaw(long bytes) {
                // Not zeroed: every byte (cache positions, staged weights, hidden states) is written before it is read.
                // Aligned to 4 KiB for direct disk reads: the driver sub-allocates small pinned blocks at finer alignment.
                MemorySegment m = offload.pinned(bytes + DiskStore.ALIGN);
                long skew = m.address() % DiskStore.ALIGN;
                return m.asSlice(skew == 0 ? 0 : DiskStore.ALIGN - skew, bytes);
            }

            @Override
            public void close() {}
        };
    }

    @Override
    public Backend backend() { return backend; }

    @Override
    public void bindThread() { offload.bindThread(); }

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
    public void compressWeights(boolean on) { compress = on; }

    @Override
    public void weightRange(dev.tandem.core.quant.GroupQuant4.Range range) { this.range = range; }

    @Override
    public Weight resident(Tensor matrix, boolean layerMatrix) {
        Weight w;
        if (compress && layerMatrix) {
            try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
                w = backend.upload(WeightRounding.roundTrip(matrix, range, a));
            }
        } else {
            w = backend.upload(matrix);
        }
        checkCap(matrix.name());
        return w;
    }

    @Override
    public long streamedBytes(MatrixShape matrix) {
        return compress ? WeightRounding.layout(matrix).packedBytes() : offload.weightType().bytesFor(matrix.elements());
    }

    @Override
    public void toStreamed(Tensor matrix, MemorySegment dst) {
        if (compress) {
            WeightRounding.compress(matrix, range, dst);
            return;
        }
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

    /** @param packed device staging of the compressed bytes, 0 when weights are not compressed */
    private record CudaSlot(Weight weight, long packed) implements Slot {}

    @Override
    public Slot slot(MatrixShape matrix) {
        Weight w = offload.weightSlot(matrix.name() + " (slot)", matrix.rows(), matrix.cols());
        long packed = compress ? offload.deviceBuffer(WeightRounding.layout(matrix).packedBytes()) : 0;
        checkCap("a weight slot for " + matrix.name());
        return new CudaSlot(w, packed);
    }

    @Override
    public void load(Slot slot, MatrixShape shape, MemorySegment src) {
        CudaSlot s = (CudaSlot) slot;
        if (s.packed() != 0) offload.loadBytesAsync(src, 0, s.packed(), WeightRounding.layout(shape).packedBytes());
        else offload.loadAsync(slot.weight(), src, 0);
    }

    @Override
    public void ready(Slot slot, MatrixShape shape) {
        CudaSlot s = (CudaSlot) slot;
        if (s.packed() != 0) gq4.dequantize(s.packed(), WeightRounding.layout(shape), offload.weightAddress(s.weight()), offload.weightType());
    }

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
    public void kvFromHost(HostKvCache cache, int cacheLayer, int first, int sequences, int count, KvStorage kv, int layer) {
        if (sequences == 0 || count == 0) return;
        long pitch = cache.capacity() * cache.slotBytes(), width = count * cache.slotBytes(), at = cache.offset(first, 0);
        long firstSlot = (long) first * cache.capacity();
        if (cache.format() != HostKvCache.Format.GQ4) {
            long devicePitch = (long) cache.capacity() * cache.kvDim() * offload.kvElementBytes(kv);
            offload.fromHost2DAsync(cache.keys(cacheLayer), at, pitch, offload.kvAddress(kv, layer, firstSlot, false), devicePitch, width, sequences);
            offload.fromHost2DAsync(cache.values(cacheLayer), at, pitch, offload.kvAddress(kv, layer, firstSlot, true), devicePitch, width, sequences);
            return;
        }
        // Only the compressed bytes cross PCIe, packed sequence after sequence; one launch per K and V decompresses them
        // into the sequences' slots.
        dev.tandem.core.quant.Gq4Layout l = HostKvCache.slotLayout(count, cache.kvHeads(), cache.headDim());
        long bytes = width * sequences, staging = kvStaging(2 * bytes), stride = (long) cache.capacity() * cache.kvDim();
        DType type = offload.kvElementBytes(kv) == 2 ? DType.BF16 : DType.F32;
        offload.fromHost2DAsync(cache.keys(cacheLayer), at, pitch, staging, width, width, sequences);
        offload.fromHost2DAsync(cache.values(cacheLayer), at, pitch, staging + bytes, width, width, sequences);
        gq4.dequantizeSequences(staging, l, sequences, offload.kvAddress(kv, layer, firstSlot, false), stride, type);
        gq4.dequantizeSequences(staging + bytes, l, sequences, offload.kvAddress(kv, layer, firstSlot, true), stride, type);
    }

    @Override
    public void kvToHost(KvStorage kv, int layer, int first, int sequences, int position, int count, HostKvCache cache, int cacheLayer) {
        if (sequences == 0 || count == 0) return;
        long pitch = cache.capacity() * cache.slotBytes(), width = count * cache.slotBytes(), at = cache.offset(first, position);
        long firstSlot = (long) first * cache.capacity() + position;
        if (cache.format() != HostKvCache.Format.GQ4) {
            long devicePitch = (long) cache.capacity() * cache.kvDim() * offload.kvElementBytes(kv);
            offload.toHost2DAsync(offload.kvAddress(kv, layer, firstSlot, false), devicePitch, cache.keys(cacheLayer), at, pitch, width, sequences);
            offload.toHost2DAsync(offload.kvAddress(kv, layer, firstSlot, true), devicePitch, cache.values(cacheLayer), at, pitch, width, sequences);
            return;
        }
        dev.tandem.core.quant.Gq4Layout l = HostKvCache.slotLayout(count, cache.kvHeads(), cache.headDim());
        long bytes = width * sequences, staging = kvStaging(2 * bytes), stride = (long) cache.capacity() * cache.kvDim();
        DType type = offload.kvElementBytes(kv) == 2 ? DType.BF16 : DType.F32;
        // Compressed on the GPU, then only the compressed bytes cross PCIe; the device slots take the stored values
        // back, so that attention over them sees what the cache holds.
        gq4.quantizeSequences(offload.kvAddress(kv, layer, firstSlot, false), stride, type, l, sequences, staging);
        gq4.quantizeSequences(offload.kvAddress(kv, layer, firstSlot, true), stride, type, l, sequences, staging + bytes);
        offload.toHost2DAsync(staging, width, cache.keys(cacheLayer), at, pitch, width, sequences);
        offload.toHost2DAsync(staging + bytes, width, cache.values(cacheLayer), at, pitch, width, sequences);
        gq4.dequantizeSequences(staging, l, sequences, offload.kvAddress(kv, layer, firstSlot, false), stride, type);
        gq4.dequantizeSequences(staging + bytes, l, sequences, offload.kvAddress(kv, layer, firstSlot, true), stride, type);
    }

    /**
     * Staging is only reused by work later on the same stream, so one buffer serves every transfer in turn. It grows to
     * what is asked and an eighth more (a GPU batch's layer at decode: 2 x batch x context x slot bytes), the old one
     * freed once the stream is past it.
     */
    private long kvStaging(long bytes) {
        if (bytes > kvPackedBytes) {
            offload.synchronize();
            if (kvPacked != 0) offload.freeDeviceBuffer(kvPacked);
            kvPacked = 0;
            kvPackedBytes = 0;
            long size = bytes + bytes / 8; // decode asks for one slot more per sequence each step
            kvPacked = offload.deviceBuffer(size);
            kvPackedBytes = size;
            checkCap("compressed KV staging");
        }
        return kvPacked;
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
