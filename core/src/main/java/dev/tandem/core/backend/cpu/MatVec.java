package dev.tandem.core.backend.cpu;

import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Halfs;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Dot products of one weight row (in its stored format, read straight from the mapped file) with up to four
 * activation rows. Weights are dequantized in registers once and used by every activation row.
 *
 * <p>Batch invariance: each activation row has its own accumulator and sees exactly the same sequence of
 * operations whether it is computed alone ({@link #dot1}) or beside three others ({@link #dot4}); the final
 * reduction is the same too. So a token's result does not depend on what else is in the batch.
 */
final class MatVec {
    private MatVec() {}

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int L = F.length();
    static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 8));
    static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(L * 16));
    static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, VectorShape.forBitSize(L * 32));
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfFloat XF = ValueLayout.JAVA_FLOAT_UNALIGNED;

    /** Weight values [c, c + L) of a float-format row starting at byte {@code row}. Small enough to inline. */
    static FloatVector load(DType t, MemorySegment w, long row, int c) {
        return t == DType.F32 ? FloatVector.fromMemorySegment(F, w, row + 4L * c, LE)
                : t == DType.BF16 ? bf16(w, row + 2L * c) : f16(w, row + 2L * c);
    }

    private static FloatVector bf16(MemorySegment w, long at) {
        IntVector v = (IntVector) ShortVector.fromMemorySegment(S, w, at, LE).convertShape(VectorOperators.S2I, I, 0);
        return v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    /** Exponent re-bias by multiplication also turns f16 subnormals into the right f32 values. */
    private static FloatVector f16(MemorySegment w, long at) {
        IntVector h = (IntVector) ShortVector.fromMemorySegment(S, w, at, LE).convertShape(VectorOperators.S2I, I, 0);
        FloatVector mag = h.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f);
        return mag.reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
    }

    /**
     * Sum of the lanes in a fixed order. reduceLanes(ADD) leaves the order open, and its interpreted and compiled
     * forms differ in the last bit, which would let a token's result depend on JIT timing.
     */
    static float sum(FloatVector v) {
        float[] t = new float[L];
        v.intoArray(t, 0);
        float s = 0;
        for (int i = 0; i < L; i++) s += t[i];
        return s;
    }

    /** Scalar weight value at column c (tails of float formats only). */
    static float scalar(DType t, MemorySegment w, long row, int c) {
        return switch (t) {
            case F32 -> w.get(F32, row + 4L * c);
            case BF16 -> Halfs.bf16ToFloat(w.get(I16, row + 2L * c));
            case F16 -> Halfs.f16ToFloat(w.get(I16, row + 2L * c));
            default -> throw new IllegalArgumentException("block formats have no tails");
        };
    }

    static float dot1(DType t, MemorySegment w, long row, int cols, MemorySegment x, long x0) {
        if (t.isQuantized()) return BlockDot.dot1(t == DType.Q4_0, w, row, cols, x, x0);
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F);
        int c = 0;
        int bound = F.loopBound(cols);
        for (; c + 2 * L <= bound; c += 2 * L) {
            a0 = load(t, w, row, c).fma(FloatVector.fromMemorySegment(F, x, x0 + 4L * c, NATIVE), a0);
            a1 = load(t, w, row, c + L).fma(FloatVector.fromMemorySegment(F, x, x0 + 4L * (c + L), NATIVE), a1);
        }
        for (; c < bound; c += L) a0 = load(t, w, row, c).fma(FloatVector.fromMemorySegment(F, x, x0 + 4L * c, NATIVE), a0);
        float s = MatVec.sum(a0.add(a1));
        for (; c < cols; c++) s += scalar(t, w, row, c) * x.get(XF, x0 + 4L * c);
        return s;
    }

    /** Four activation rows at once; out[i] is bit-identical to dot1 on row i. */
    static void dot4(DType t, MemorySegment w, long row, int cols, MemorySegment x, long x0, long x1, long x2, long x3, float[] out) {
        if (t.isQuantized()) {
            BlockDot.dot4(t == DType.Q4_0, w, row, cols, x, x0, x1, x2, x3, out);
            return;
        }
        FloatVector a0 = FloatVector.zero(F), b0 = a0, c0 = a0, d0 = a0, a1 = a0, b1 = a0, c1 = a0, d1 = a0;
        int c = 0;
        int bound = F.loopBound(cols);
        for (; c + 2 * L <= bound; c += 2 * L) {
            FloatVector w0 = load(t, w, row, c), w1 = load(t, w, row, c + L);
            long o0 = 4L * c, o1 = 4L * (c + L);
            a0 = w0.fma(FloatVector.fromMemorySegment(F, x, x0 + o0, NATIVE), a0);
            a1 = w1.fma(FloatVector.fromMemorySegment(F, x, x0 + o1, NATIVE), a1);
            b0 = w0.fma(FloatVector.fromMemorySegment(F, x, x1 + o0, NATIVE), b0);
            b1 = w1.fma(FloatVector.fromMemorySegment(F, x, x1 + o1, NATIVE), b1);
            c0 = w0.fma(FloatVector.fromMemorySegment(F, x, x2 + o0, NATIVE), c0);
            c1 = w1.fma(FloatVector.fromMemorySegment(F, x, x2 + o1, NATIVE), c1);
            d0 = w0.fma(FloatVector.fromMemorySegment(F, x, x3 + o0, NATIVE), d0);
            d1 = w1.fma(FloatVector.fromMemorySegment(F, x, x3 + o1, NATIVE), d1);
        }
        for (; c < bound; c += L) {
            FloatVector w0 = load(t, w, row, c);
            long o0 = 4L * c;
            a0 = w0.fma(FloatVector.fromMemorySegment(F, x, x0 + o0, NATIVE), a0);
            b0 = w0.fma(FloatVector.fromMemorySegment(F, x, x1 + o0, NATIVE), b0);
            c0 = w0.fma(FloatVector.fromMemorySegment(F, x, x2 + o0, NATIVE), c0);
            d0 = w0.fma(FloatVector.fromMemorySegment(F, x, x3 + o0, NATIVE), d0);
        }
        float sa = MatVec.sum(a0.add(a1)), sb = MatVec.sum(b0.add(b1));
        float sc = MatVec.sum(c0.add(c1)), sd = MatVec.sum(d0.add(d1));
        for (; c < cols; c++) {
            float wv = scalar(t, w, row, c);
            long o = 4L * c;
            sa += wv * x.get(XF, x0 + o);
            sb += wv * x.get(XF, x1 + o);
            sc += wv * x.get(XF, x2 + o);
            sd += wv * x.get(XF, x3 + o);
        }
        out[0] = sa;
        out[1] = sb;
        out[2] = sc;
        out[3] = sd;
    }
}
