package dev.tandem.cuda.backend;

import dev.tandem.core.quant.GroupQuant4;
import dev.tandem.core.quant.Gq4Layout;
import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Halfs;
import dev.tandem.cuda.CudaDriver;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The GPU's GQ4 kernels give the CPU's bits: decompression to bf16 and f32, and compression of KV rows. */
class CudaGq4Test {
    /** Weights grouped along out (with and without padding, odd inner), KV grouped along head_dim 56 / 128 / 130. */
    private static final long[][] SHAPES = {{300, 100}, {1216, 448}, {64, 7}, {37, 4, 56}, {9, 2, 128}, {5, 3, 130}};
    private static final int[] DIMS = {0, 0, 0, 2, 2, 2};

    @BeforeAll
    static void needsGpu() {
        String why = CudaDriver.unavailableReason();
        if (why != null) System.err.println("CudaGq4Test skipped: no CUDA GPU here (" + why + "); it runs on the GPU machine");
        assumeTrue(why == null, "no CUDA GPU here (" + why + ")");
    }

    @Test
    void gpuDequantizeMatchesCpuBitForBit() {
        try (CudaBackend b = new CudaBackend(0, CudaBackend.Precision.BF16); Arena arena = Arena.ofConfined()) {
            CudaGq4 gq4 = new CudaGq4(b);
            CudaDriver cuda = b.driver();
            for (int s = 0; s < SHAPES.length; s++) {
                GroupQuant4.Packed p = GroupQuant4.quantize(random(arena, SHAPES[s], DType.F32, s), DType.F32, DIMS[s], arena, SHAPES[s]);
                Gq4Layout l = p.layout();
                int rows = (int) l.rows();
                long n = l.elements();
                long dPacked = cuda.malloc(l.packedBytes()), dOut = cuda.malloc(4 * n);
                try {
                    cuda.copyToDevice(dPacked, p.data(), l.packedBytes());
                    for (DType type : new DType[] {DType.F32, DType.BF16}) {
                        long bytes = type == DType.F32 ? 4 * n : 2 * n;
                        MemorySegment want = arena.allocate(bytes), got = arena.allocate(bytes);
                        GroupQuant4.dequantizeRows(p, 0, rows, want, 0, type);
                        gq4.dequantize(dPacked, l, dOut, type);
                        b.sync();
                        cuda.copyToHost(got, dOut, bytes);
                        long at = want.mismatch(got);
                        assertEquals(-1, at, l + " to " + type + ": first differing byte " + at);
                    }
                } finally {
                    cuda.free(dPacked);
                    cuda.free(dOut);
                }
            }
        }
    }

    @Test
    void gpuQuantizeOfKvRowsMatchesCpuByteForByte() {
        try (CudaBackend b = new CudaBackend(0, CudaBackend.Precision.BF16); Arena arena = Arena.ofConfined()) {
            CudaGq4 gq4 = new CudaGq4(b);
            CudaDriver cuda = b.driver();
            for (int s = 3; s < SHAPES.length; s++) {
                for (DType type : new DType[] {DType.F32, DType.BF16}) {
                    MemorySegment src = random(arena, SHAPES[s], type, s);
                    GroupQuant4.Packed want = GroupQuant4.quantize(src, type, DIMS[s], GroupQuant4.KV_RANGE, arena, SHAPES[s]);
                    Gq4Layout l = want.layout();
                    long dSrc = cuda.malloc(src.byteSize()), dPacked = cuda.malloc(l.packedBytes());
                    try {
                        cuda.copyToDevice(dSrc, src, src.byteSize());
                        cuda.memset(dPacked, (byte) 0x5a, l.packedBytes());
                        gq4.quantize(dSrc, type, l, dPacked);
                        b.sync();
                        MemorySegment got = arena.allocate(l.packedBytes());
                        cuda.copyToHost(got, dPacked, l.packedBytes());
                        long at = want.data().mismatch(got);
                        assertEquals(-1, at, l + " from " + type + ": first differing byte " + at);
                    } finally {
                        cuda.free(dSrc);
                        cuda.free(dPacked);
                    }
                }
            }
        }
    }

    /** Gaussians with a per-row offset and spread, so groups differ in range (as activations do). */
    private static MemorySegment random(Arena arena, long[] shape, DType type, int seed) {
        long n = 1;
        for (long d : shape) n *= d;
        Random rnd = new Random(seed);
        MemorySegment m = arena.allocate(type == DType.F32 ? 4 * n : 2 * n);
        for (long i = 0; i < n; i++) {
            float v = (float) (rnd.nextGaussian() * (0.1 + (i / 64) % 7) + (i % 5) - 2);
            if (type == DType.F32) m.set(ValueLayout.JAVA_FLOAT_UNALIGNED, 4 * i, v);
            else m.set(Codec.I16, 2 * i, Halfs.floatToBf16(v));
        }
        return m;
    }
}
