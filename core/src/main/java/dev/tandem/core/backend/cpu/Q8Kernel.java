package dev.tandem.core.backend.cpu;

import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.Tensor;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Q8_0 weights. Packed per group and 32-column block: the group's LANES scales as f32, then 32 columns of
 * LANES int8 quants. Per output and block: s = FMA chain of q * x over the block's columns, then
 * acc = fma(s, d, acc) (one scale multiply per block instead of per weight).
 */
final class Q8Kernel extends MatmulKernel {
    private static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(LANES * 8));
    private static final long SCALES = (long) LANES * Float.BYTES;
    /** Bytes of one group-block. */
    private static final long GB = SCALES + 32L * LANES;

    @Override
    long packedBytes(int rows, int cols) { return (long) groups(rows) * (cols / 32) * GB; }

    @Override
    void pack(Tensor t, MemorySegment dst) {
        int rows = t.rows(), cols = t.cols(), blocks = cols / 32;
        MemorySegment src = t.data();
        for (int r = 0; r < rows; r++) {
            for (int b = 0; b < blocks; b++) {
                long in = ((long) r * blocks + b) * 34;
                long base = ((long) (r / LANES) * blocks + b) * GB;
                int lane = r % LANES;
                dst.set(ValueLayout.JAVA_FLOAT_UNALIGNED, base + lane * 4L, Float.float16ToFloat(src.get(Codec.I16, in)));
                for (int c = 0; c < 32; c++) {
                    dst.set(ValueLayout.JAVA_BYTE, base + SCALES + (long) c * LANES + lane, src.get(ValueLayout.JAVA_BYTE, in + 2 + c));
                }
            }
        }
    }

    @Override
    void gemv(MemorySegment w, int rows, int cols, float[] x, float[] xs, MemorySegment out, long outOff, int g0, int g1) {
        int blocks = cols / 32;
        long gs = blocks * GB;
        float[] acc = new float[4 * LANES];
        for (int g = g0; g < g1; g += 4) {
            long o0 = g * gs, o1 = Math.min(g + 1, g1 - 1) * gs, o2 = Math.min(g + 2, g1 - 1) * gs,
                    o3 = Math.min(g + 3, g1 - 1) * gs;
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
            for (int b = 0; b < blocks; b++) {
                FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0;
                long bo = b * GB + SCALES;
                int xo = b * 32;
                for (int c = 0; c < 32; c++) {
                    FloatVector xv = FloatVector.broadcast(F, x[xo + c]);
                    long co = bo + (long) c * LANES;
                    s0 = ((FloatVector) ByteVector.fromMemorySegment(B, w, o0 + co, LE).convertShape(VectorOperators.B2F, F, 0)).fma(xv, s0);
                    s1 = ((FloatVector) ByteVector.fromMemorySegment(B, w, o1 + co, LE).convertShape(VectorOperators.B2F, F, 0)).fma(xv, s1);
                    s2 = ((FloatVector) ByteVector.fromMemorySegment(B, w, o2 + co, LE).convertShape(VectorOperators.B2F, F, 0)).fma(xv, s2);
                    s3 = ((FloatVector) ByteVector.fromMemorySegment(B, w, o3 + co, LE).convertShape(VectorOperators.B2F, F, 0)).fma(xv, s3);
                }
                long so = b * GB;
                a0 = s0.fma(FloatVector.fromMemorySegment(F, w, o0 + so, LE), a0);
                a1 = s1.fma(FloatVector.fromMemorySegment(F, w, o1 + so, LE), a1);
                a2 = s2.fma(FloatVector.fromMemorySegment(F, w, o2 + so, LE), a2);
                a3 = s3.fma(FloatVector.fromMemorySegment(F, w, o3 + so, LE), a3);
            }
            a0.intoArray(acc, 0);
            a1.intoArray(acc, LANES);
            a2.intoArray(acc, 2 * LANES);
            a3.intoArray(acc, 3 * LANES);
            store(acc, 4, Math.min(4, g1 - g), 1, rows, out, outOff, g);
        }
    }

    @Override
    void gemm(MemorySegment w, int rows, int cols, float[] xp, int xpOff, float[] xs, int xsOff,
              MemorySegment out, long outOff, int ntok, int g0, int g1) {
        int blocks = cols / 32;
        long gs = blocks * GB;
        float[] acc = new float[8 * LANES];
        for (int g = g0; g < g1; g += 2) {
            long o0 = g * gs, o1 = Math.min(g + 1, g1 - 1) * gs;
            FloatVector a00 = FloatVector.zero(F), a01 = a00, a02 = a00, a03 = a00;
            FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
            for (int b = 0; b < blocks; b++) {
                FloatVector s00 = FloatVector.zero(F), s01 = s00, s02 = s00, s03 = s00;
                FloatVector s10 = s00, s11 = s00, s12 = s00, s13 = s00;
                long bo = b * GB + SCALES;
                for (int c = 0; c < 32; c++) {
                    long co = bo + (long) c * LANES;
                    int xo = xpOff + (b * 32 + c) * TILE;
                    FloatVector w0 = (FloatVector) ByteVector.fromMemorySegment(B, w, o0 + co, LE).convertShape(VectorOperators.B2F, F, 0);
                    FloatVector w1 = (FloatVector) ByteVector.fromMemorySegment(B, w, o1 + co, LE).convertShape(VectorOperators.B2F, F, 0);
                    FloatVector x0 = FloatVector.broadcast(F, xp[xo]);
                    s00 = w0.fma(x0, s00);
                    s10 = w1.fma(x0, s10);
                    FloatVector x1 = FloatVector.broadcast(F, xp[xo + 1]);
                    s01 = w0.fma(x1, s01);
                    s11 = w1.fma(x1, s11);
                    FloatVector x2 = FloatVector.broadcast(F, xp[xo + 2]);
                    s02 = w0.fma(x2, s02);
                    s12 = w1.fma(x2, s12);
                    FloatVector x3 = FloatVector.broadcast(F, xp[xo + 3]);
                    s03 = w0.fma(x3, s03);
                    s13 = w1.fma(x3, s13);
                }
                long so = b * GB;
                FloatVector d0 = FloatVector.fromMemorySegment(F, w, o0 + so, LE);
                FloatVector d1 = FloatVector.fromMemorySegment(F, w, o1 + so, LE);
                a00 = s00.fma(d0, a00);
                a01 = s01.fma(d0, a01);
                a02 = s02.fma(d0, a02);
                a03 = s03.fma(d0, a03);
                a10 = s10.fma(d1, a10);
                a11 = s11.fma(d1, a11);
                a12 = s12.fma(d1, a12);
                a13 = s13.fma(d1, a13);
            }
            a00.intoArray(acc, 0);
            a10.intoArray(acc, LANES);
            a01.intoArray(acc, 2 * LANES);
            a11.intoArray(acc, 3 * LANES);
            a02.intoArray(acc, 4 * LANES);
            a12.intoArray(acc, 5 * LANES);
            a03.intoArray(acc, 6 * LANES);
            a13.intoArray(acc, 7 * LANES);
            store(acc, 2, Math.min(2, g1 - g), ntok, rows, out, outOff, g);
        }
    }
}
