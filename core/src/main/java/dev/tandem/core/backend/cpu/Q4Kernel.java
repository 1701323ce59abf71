package dev.tandem.core.backend.cpu;

import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Q4_0 weights. Packed per group and 32-column block: the group's LANES scales as f32, then four int vectors;
 * lane r of vector j holds row r's 4-bit quants of columns 8j..8j+7, column 8j+i in bits 4i..4i+3.
 *
 * <p>Column 8j+i is decoded with one AND (mask 0xF << 4i) and one int-to-float conversion, giving q * 16^i
 * exactly (four significant bits); the top nibble is shifted down instead, as its mask would set the sign.
 * The 16^-i goes into the activations once per token ({@link #prepare}: a power-of-two scaling, exact), so
 * products are exactly q * x. The -8 offset is folded out: per block s = sum q * x, then s - 8 * sum(x) with
 * sum(x) per block computed once per token ({@link MatmulKernel#blockSums}). This beat rotating each nibble
 * into a float's mantissa, and converting bytes, by 25-40% on AVX-512. Per output and block: s = FMA chain over
 * the columns in order (j, then i), acc = fma(s + (-8 * xsum), d, acc).
 */
final class Q4Kernel extends MatmulKernel {
    private static final VectorSpecies<Integer> I = F.withLanes(int.class);
    private static final long VEC = (long) LANES * Integer.BYTES;
    /** Bytes of one group-block: scales, then four nibble vectors. */
    private static final long GB = 5 * VEC;

    @Override
    long packedBytes(int rows, int cols) { return (long) groups(rows) * (cols / 32) * GB; }

    @Override
    boolean needsBlockSums() { return true; }

    /** x[c] * 16^-(c % 8) for c % 8 in 1..6, matching the weight nibbles' q * 16^i (powers of two: exact). */
    @Override
    void prepare(float[] x, int off, int cols) {
        for (int c = 0; c < cols; c++) {
            int i = c & 7;
            if (i != 0 && i != 7) x[off + c] = Math.scalb(x[off + c], -4 * i);
        }
    }

    @Override
    void pack(Tensor t, MemorySegment dst) {
        int rows = t.rows(), cols = t.cols(), blocks = cols / 32;
        MemorySegment src = t.data();
        for (int r = 0; r < rows; r++) {
            for (int b = 0; b < blocks; b++) {
                long in = ((long) r * blocks + b) * 18;
                long base = ((long) (r / LANES) * blocks + b) * GB;
                int lane = r % LANES;
                dst.set(ValueLayout.JAVA_FLOAT_UNALIGNED, base + lane * 4L, Float.float16ToFloat(src.get(Codec.I16, in)));
                for (int j = 0; j < 4; j++) {
                    int word = 0;
                    for (int i = 0; i < 8; i++) {
                        int c = 8 * j + i;
                        int q = src.get(ValueLayout.JAVA_BYTE, in + 2 + (c & 15)) & 0xff;
                        word |= (c < 16 ? q & 0x0f : q >>> 4) << (4 * i);
                    }
                    dst.set(ValueLayout.JAVA_INT_UNALIGNED, base + VEC * (1 + j) + lane * 4L, word);
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
                long bo = b * GB;
                // Small loop bodies on purpose: C1 gives up on big Vector API methods ("out of virtual
                // registers"), which can leave a method stuck below C2. C2 unrolls the loop itself.
                for (int j = 0; j < 4; j++) {
                    long vo = bo + VEC * (1 + j);
                    IntVector v0 = IntVector.fromMemorySegment(I, w, o0 + vo, LE);
                    IntVector v1 = IntVector.fromMemorySegment(I, w, o1 + vo, LE);
                    IntVector v2 = IntVector.fromMemorySegment(I, w, o2 + vo, LE);
                    IntVector v3 = IntVector.fromMemorySegment(I, w, o3 + vo, LE);
                    int xo = b * 32 + j * 8;
                    for (int i = 0; i < 7; i++) {
                        int mask = 0xF << (4 * i);
                        FloatVector xv = FloatVector.broadcast(F, x[xo + i]);
                        s0 = ((FloatVector) v0.and(mask).convert(VectorOperators.I2F, 0)).fma(xv, s0);
                        s1 = ((FloatVector) v1.and(mask).convert(VectorOperators.I2F, 0)).fma(xv, s1);
                        s2 = ((FloatVector) v2.and(mask).convert(VectorOperators.I2F, 0)).fma(xv, s2);
                        s3 = ((FloatVector) v3.and(mask).convert(VectorOperators.I2F, 0)).fma(xv, s3);
                    }
                    FloatVector xv = FloatVector.broadcast(F, x[xo + 7]);
                    s0 = ((FloatVector) v0.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(xv, s0);
                    s1 = ((FloatVector) v1.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(xv, s1);
                    s2 = ((FloatVector) v2.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(xv, s2);
                    s3 = ((FloatVector) v3.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(xv, s3);
                }
                FloatVector corr = FloatVector.broadcast(F, -8f * xs[b]);
                a0 = s0.add(corr).fma(FloatVector.fromMemorySegment(F, w, o0 + bo, LE), a0);
                a1 = s1.add(corr).fma(FloatVector.fromMemorySegment(F, w, o1 + bo, LE), a1);
                a2 = s2.add(corr).fma(FloatVector.fromMemorySegment(F, w, o2 + bo, LE), a2);
                a3 = s3.add(corr).fma(FloatVector.fromMemorySegment(F, w, o3 + bo, LE), a3);
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
                long bo = b * GB;
                for (int j = 0; j < 4; j++) {
                    long vo = bo + VEC * (1 + j);
                    IntVector v0 = IntVector.fromMemorySegment(I, w, o0 + vo, LE);
                    IntVector v1 = IntVector.fromMemorySegment(I, w, o1 + vo, LE);
                    for (int i = 0; i < 8; i++) {
                        // Nibble i as the float q * 16^i (exact: 4 significant bits); the top one shifted down.
                        FloatVector w0, w1;
                        if (i < 7) {
                            int mask = 0xF << (4 * i);
                            w0 = (FloatVector) v0.and(mask).convert(VectorOperators.I2F, 0);
                            w1 = (FloatVector) v1.and(mask).convert(VectorOperators.I2F, 0);
                        } else {
                            w0 = (FloatVector) v0.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0);
                            w1 = (FloatVector) v1.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0);
                        }
                        int xo = xpOff + (b * 32 + j * 8 + i) * TILE;
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
                }
                int so = xsOff + b * TILE;
                FloatVector d0 = FloatVector.fromMemorySegment(F, w, o0 + bo, LE);
                FloatVector d1 = FloatVector.fromMemorySegment(F, w, o1 + bo, LE);
                FloatVector c0 = FloatVector.broadcast(F, -8f * xs[so]);
                a00 = s00.add(c0).fma(d0, a00);
                a10 = s10.add(c0).fma(d1, a10);
                FloatVector c1 = FloatVector.broadcast(F, -8f * xs[so + 1]);
                a01 = s01.add(c1).fma(d0, a01);
                a11 = s11.add(c1).fma(d1, a11);
                FloatVector c2 = FloatVector.broadcast(F, -8f * xs[so + 2]);
                a02 = s02.add(c2).fma(d0, a02);
                a12 = s12.add(c2).fma(d1, a12);
                FloatVector c3 = FloatVector.broadcast(F, -8f * xs[so + 3]);
                a03 = s03.add(c3).fma(d0, a03);
                a13 = s13.add(c3).fma(d1, a13);
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
