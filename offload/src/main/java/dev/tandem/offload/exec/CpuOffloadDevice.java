package dev.tandem.offload.exec;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.Weight;
import dev.tandem.core.backend.cpu.CpuActivation;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The CPU path: the backend's ops run on the host, "resident" weights are in RAM, and streamed weights are packed for
 * the matmul kernels into a few recycled buffers as their layer comes up. Packing is synchronous: the block schedule
 * overlaps the disk reads (on its I/O thread) with compute, and the pack itself is the load.
 */
public final class CpuOffloadDevice implements OffloadDevice {
    private final CpuBackend backend;
    private final HostMemory host;
    private final Arena slots = Arena.ofShared();
    private boolean compress;
    private dev.tandem.core.quant.GroupQuant4.Range range = dev.tandem.core.quant.WeightCompression.DEFAULT_RANGE;

    public CpuOffloadDevice(CpuBackend backend, long cpuMemoryCap) {
        this.backend = backend;
        this.host = HostMemory.plain(cpuMemoryCap);
    }

    @Override
    public Backend backend() { return backend; }

    @Override
    public HostMemory host() { return host; }

    @Override
    public boolean hostOnly() { return true; }

    @Override
    public void compressWeights(boolean on) { compress = on; }

    @Override
    public void weightRange(dev.tandem.core.quant.GroupQuant4.Range range) { this.range = range; }

    @Override
    public Weight resident(Tensor matrix, boolean layerMatrix) {
        if (compress && layerMatrix) matrix = WeightRounding.roundTrip(matrix, range, slots);
        // Packed now (the matrix may live in an arena about to close), counted against the RAM cap.
        long bytes = backend.packedBytes(matrix);
        host.reserve(bytes);
        return backend.uploadInto(matrix, slots.allocate(bytes, 64));
    }

    @Override
    public long streamedBytes(MatrixShape matrix) {
        return compress ? WeightRounding.layout(matrix).packedBytes() : matrix.dtype().bytesFor(matrix.elements());
    }

    @Override
    public void toStreamed(Tensor matrix, MemorySegment dst) {
        if (compress) WeightRounding.compress(matrix, range, dst);
        else MemorySegment.copy(matrix.data(), 0, dst, 0, matrix.data().byteSize());
    }

    private static final class CpuSlot implements Slot {
        final MemorySegment buffer, decompressed;
        Weight weight;

        CpuSlot(MemorySegment buffer, MemorySegment decompressed) {
            this.buffer = buffer;
            this.decompressed = decompressed;
        }

        @Override
        public Weight weight() { return weight; }
    }

    @Override
    public Slot slot(MatrixShape matrix) {
        dev.tandem.core.tensor.DType type = compress ? dev.tandem.core.tensor.DType.BF16 : matrix.dtype();
        long bytes = backend.packedBytes(type, matrix.rows(), matrix.cols());
        host.reserve(bytes);
        MemorySegment decompressed = null;
        if (compress) {
            host.reserve(2 * matrix.elements());
            decompressed = slots.allocate(2 * matrix.elements(), 64);
        }
        return new CpuSlot(slots.allocate(bytes, 64), decompressed);
    }

    @Override
    public void load(Slot slot, MatrixShape shape, MemorySegment src) {
        CpuSlot s = (CpuSlot) slot;
        Tensor t;
        if (compress) {
            WeightRounding.decompress(shape, src, s.decompressed);
            t = new Tensor(shape.name(), dev.tandem.core.tensor.DType.BF16, shape.dims(), s.decompressed);
        } else {
            t = new Tensor(shape.name(), shape.dtype(), shape.dims(), src.asSlice(0, streamedBytes(shape)));
        }
        s.weight = backend.uploadInto(t, s.buffer);
    }

    @Override
    public Object loadsIssued() { return Boolean.TRUE; }

    @Override
    public void hostWait(Object handle) {}

    @Override
    public void computeAfter(Object loads) {}

    @Override
    public Object computeIssued() { return Boolean.TRUE; }

    @Override
    public void loadsAfter(Object compute) {}

    @Override
    public void toHost(Activation x, int rows, MemorySegment dst, long offset) {
        CpuActivation a = CpuActivation.of(x);
        MemorySegment.copy(a.segment(), 0, dst, offset, 4L * rows * a.cols());
    }

    @Override
    public void fromHost(MemorySegment src, long offset, Activation x, int rows) {
        CpuActivation a = CpuActivation.of(x);
        MemorySegment.copy(src, offset, a.segment(), 0, 4L * rows * a.cols());
    }

    @Override
    public void kvToHost(KvStorage kv, int layer, int first, int sequences, int position, int count, HostKvCache cache, int cacheLayer) {
        throw new UnsupportedOperationException("the CPU path keeps its KV cache on the host");
    }

    @Override
    public void kvFromHost(HostKvCache cache, int cacheLayer, int first, int sequences, int count, KvStorage kv, int layer) {
        throw new UnsupportedOperationException("the CPU path keeps its KV cache on the host");
    }

    @Override
    public int kvElementBytes() { return 4; }

    @Override
    public void synchronize() {}

    @Override
    public long deviceBytes() { return 0; }

    @Override
    public void close() {
        slots.close();
        host.close();
    }
}
