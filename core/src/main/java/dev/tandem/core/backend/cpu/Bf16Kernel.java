package dev.tandem.core.backend.cpu;

import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** BF16 weights, packed like {@link F32Kernel} with LANES bf16 values per column; widened by a 16-bit shift. */
final class Bf16Kernel extends MatmulKernel {
    private static final long COL = (long) LANES * Short.BYTES;
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(LANES * 16));
    private static final VectorSpecies<Integer> I = F.withLanes(int.class);

    @Override
    long packedBytes(int rows, int cols) { return (long) groups(rows) * cols * COL; }

    @Override
    void pack(Tensor t, MemorySegment dst) {
        int rows = t.rows(), cols = t.cols();
        short[] row = new short[cols];
        for (int r = 0; r < rows; r++) {
            MemorySegment.copy(t.data(), Codec.I16, (long) r * cols * Short.BYTES, row, 0, cols);
            long base = (long) (r / LANES) * cols * COL + (r % LANES) * Short.BYTES;
            for (int c = 0; c < cols; c++) dst.set(ValueLayout.JAVA_SHORT_UNALIGNED, base + c * COL, row[c]);
        }
    }

    @Override
    void gemv(MemorySegment w, int rows, int cols, float[] x, float[] xs, MemorySegment out, long outOff, int g0, int g1) {
        long gs = cols * COL;
        float[] acc = new float[4 * LANES];
        for (int g = g0; g < g1; g += 4) {
            long o0 = g * gs, o1 = Math.min(g + 1, g1 - 1) * gs, o2 = Math.min(g + 2, g1 - 1) * gs,
                    o3 = Math.min(g + 3, g1 - 1) * gs;
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
            for (int c = 0; c < cols; c++) {
                FloatVector xv = FloatVector.broadcast(F, x[c]);
                long co = c * COL;
                a0 = ((IntVector) ShortVector.fromMemorySegment(S, w, o0 + co, LE).convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(xv, a0);
                a1 = ((IntVector) ShortVector.fromMemorySegment(S, w, o1 + co, LE).convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(xv, a1);
                a2 = ((IntVector) ShortVector.fromMemorySegment(S, w, o2 + co, LE).convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(xv, a2);
                a3 = ((IntVector) ShortVector.fromMemorySegment(S, w, o3 + co, LE).convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(xv, a3);
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
        long gs = cols * COL;
        float[] acc = new float[8 * LANES];
        for (int g = g0; g < g1; g += 2) {
            long o0 = g * gs, o1 = Math.min(g + 1, g1 - 1) * gs;
            FloatVector a00 = FloatVector.zero(F), a01 = a00, a02 = a00, a03 = a00;
            FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
            for (int c = 0; c < cols; c++) {
                long co = c * COL;
                int xo = xpOff + c * TILE;
                FloatVector w0 = ((IntVector) ShortVector.fromMemorySegment(S, w, o0 + co, LE).convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                FloatVector w1 = ((IntVector) ShortVector.fromMemorySegment(S, w, o1 + co, LE).convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                FloatVector x0 = FloatVector.broadcast(F, xp[xo]);
                a00 = w0.fma(x0, a00);
                a10 = w1.fma(x0, a10);
                FloatVector x1 = FloatVector.broadcast(F, xp[xo + 1]);
                a01 = w0.fma(x1, a01);
                a11 = w1.fma(x1, a11);
                FloatVector x2 = FloatVector.broadcast(F, xp[xo + 2]);
                a02 = w0.fma(x2, a02);
                a12 = w1.fma(x2, a12);
                FloatVector x3 = FloatVector.broadcast(F, xp[xo + 3]);
                a03 = w0.fma(x3, a03);
                a13 = w1.fma(x3, a13);
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

    /** 8 tokens by 2 row groups per pass: each bf16 weight vector is loaded and widened once for 8 FMAs, not 4. */
    @Override
    void gemmPair(MemorySegment w, int rows, int cols, float[] xp, int xpOff, float[] xs, int xsOff, int xsOff2,
                  MemorySegment out, long outOff, int ntok2, int g0, int g1) {
        long gs = cols * COL;
        int xp2 = xpOff + cols * TILE;
        float[] acc = new float[8 * LANES], acc2 = new float[8 * LANES];
        for (int g = g0; g < g1; g += 2) {
            long o0 = g * gs, o1 = Math.min(g + 1, g1 - 1) * gs;
            FloatVector a00 = FloatVector.zero(F), a01 = a00, a02 = a00, a03 = a00, a04 = a00, a05 = a00, a06 = a00, a07 = a00;
            FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00, a14 = a00, a15 = a00, a16 = a00, a17 = a00;
            for (int c = 0; c < cols; c++) {
                long co = c * COL;
                int xo = xpOff + c * TILE, xq = xp2 + c * TILE;
                FloatVector w0 = ((IntVector) ShortVector.fromMemorySegment(S, w, o0 + co, LE).convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                FloatVector w1 = ((IntVector) ShortVector.fromMemorySegment(S, w, o1 + co, LE).convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                FloatVector x = FloatVector.broadcast(F, xp[xo]);
                a00 = w0.fma(x, a00);
                a10 = w1.fma(x, a10);
                x = FloatVector.broadcast(F, xp[xo + 1]);
                a01 = w0.fma(x, a01);
                a11 = w1.fma(x, a11);
                x = FloatVector.broadcast(F, xp[xo + 2]);
                a02 = w0.fma(x, a02);
                a12 = w1.fma(x, a12);
                x = FloatVector.broadcast(F, xp[xo + 3]);
                a03 = w0.fma(x, a03);
                a13 = w1.fma(x, a13);
                x = FloatVector.broadcast(F, xp[xq]);
                a04 = w0.fma(x, a04);
                a14 = w1.fma(x, a14);
                x = FloatVector.broadcast(F, xp[xq + 1]);
                a05 = w0.fma(x, a05);
                a15 = w1.fma(x, a15);
                x = FloatVector.broadcast(F, xp[xq + 2]);
                a06 = w0.fma(x, a06);
                a16 = w1.fma(x, a16);
                x = FloatVector.broadcast(F, xp[xq + 3]);
                a07 = w0.fma(x, a07);
                a17 = w1.fma(x, a17);
            }
            a00.intoArray(acc, 0);
            a10.intoArray(acc, LANES);
            a01.intoArray(acc, 2 * LANES);
            a11.intoArray(acc, 3 * LANES);
            a02.intoArray(acc, 4 * LANES);
            a12.intoArray(acc, 5 * LANES);
            a03.intoArray(acc, 6 * LANES);
            a13.intoArray(acc, 7 * LANES);
            a04.intoArray(acc2, 0);
            a14.intoArray(acc2, LANES);
            a05.intoArray(acc2, 2 * LANES);
            a15.intoArray(acc2, 3 * LANES);
            a06.intoArray(acc2, 4 * LANES);
            a16.intoArray(acc2, 5 * LANES);
            a07.intoArray(acc2, 6 * LANES);
            a17.intoArray(acc2, 7 * LANES);
            int ng = Math.min(2, g1 - g);
            store(acc, 2, ng, TILE, rows, out, outOff, g);
            store(acc2, 2, ng, ntok2, rows, out, outOff + (long) TILE * rows * Float.BYTES, g);
        }
    }
}
