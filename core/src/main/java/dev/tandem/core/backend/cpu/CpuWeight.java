package dev.tandem.core.backend.cpu;

import dev.tandem.core.backend.Weight;
import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A weight as the CPU backend uses it: the tensor as stored (usually a slice of the memory-mapped file, read
 * by {@code embed}), plus the kernel layout of {@link MatmulKernel} for matmul, in the backend's native memory.
 * The packed copy is made on the first matmul, once (a 32000x768 matrix takes 15-100 ms), so an embedding table
 * that is never multiplied (an untied one) costs no extra memory. Repacking is not optional: the kernels read
 * 16 rows at once, interleaved, aligned, with block scales as f32 (about 6-11% more bytes than Q8_0 / Q4_0).
 */
public final class CpuWeight implements Weight {
    private final Tensor source;
    private final Arena arena;
    private final MatmulKernel kernel;
    private volatile MemorySegment packed;
    private float[] values;

    CpuWeight(Tensor source, Arena arena) {
        if (source.dtype().isQuantized() && source.cols() % source.dtype().blockSize() != 0) {
            throw new IllegalArgumentException(source + ": rows of " + source.cols() + " are not whole "
                    + source.dtype() + " blocks");
        }
        this.source = source;
        this.arena = arena;
        this.kernel = MatmulKernel.of(source.dtype());
    }

    /**
     * Packs {@code source} now into {@code buffer} (at least {@link MatmulKernel#packedBytes} bytes, 64-byte aligned), memory
     * the caller owns and recycles: an offloaded run refills a few such buffers with one layer after another.
     */
    CpuWeight(Tensor source, MemorySegment buffer) {
        this(source, (Arena) null);
        kernel.pack(source, buffer);
        packed = buffer;
    }

    @Override
    public String name() { return source.name(); }

    @Override
    public DType dtype() { return source.dtype(); }

    @Override
    public int rows() { return source.rows(); }

    @Override
    public int cols() { return source.cols(); }

    public Tensor source() { return source; }

    MatmulKernel kernel() { return kernel; }

    /** The kernel layout, packed into the backend's native memory on first use. */
    MemorySegment packed() {
        MemorySegment p = packed;
        if (p == null) {
            synchronized (this) {
                p = packed;
                if (p == null) {
                    p = arena.allocate(kernel.packedBytes(rows(), cols()), 64);
                    kernel.pack(source, p);
                    packed = p;
                }
            }
        }
        return p;
    }

    /** All values decoded to f32, for the small 1-D weights (norm gains, biases); cached. */
    synchronized float[] values() {
        if (values == null) {
            long n = source.elements();
            if (n > Integer.MAX_VALUE / 2) throw new IllegalStateException("weight too large to decode: " + source);
            float[] v = new float[(int) n];
            Codec.decode(source.dtype(), source.data(), 0, v, 0, v.length);
            values = v;
        }
        return values;
    }

    public static CpuWeight of(Weight w) {
        if (w instanceof CpuWeight c) return c;
        throw new IllegalArgumentException("not a CPU weight: " + w.getClass().getSimpleName());
    }
}
