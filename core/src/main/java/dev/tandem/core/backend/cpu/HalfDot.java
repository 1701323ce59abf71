package dev.tandem.core.backend.cpu;

import dev.tandem.core.tensor.Halfs;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.tandem.core.backend.cpu.MatVec.F;
import static dev.tandem.core.backend.cpu.MatVec.I;
import static dev.tandem.core.backend.cpu.MatVec.L;
import static dev.tandem.core.backend.cpu.MatVec.LE;
import static dev.tandem.core.backend.cpu.MatVec.NATIVE;

/**
 * Dot products against BF16 / F16 rows with 16 float lanes. Widening 16 shorts to 16 ints through a
 * shape-changing cast is slow in the Vector API, so each load takes 32 values as 16 ints and splits them
 * into the even and the odd values with a shift and a mask. The activations are therefore laid out once per
 * matmul as {@link #deinterleave deinterleaved} 32-value chunks (evens, then odds); a tail shorter than 32
 * keeps its natural order. Same batch-invariance rule as {@link MatVec}.
 */
final class HalfDot {
    private HalfDot() {}

    static final boolean AVAILABLE = L == 16;
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfFloat XF = ValueLayout.JAVA_FLOAT_UNALIGNED;

    /** Copies row {@code src} of n floats into {@code dst} with every full 32-value chunk split into evens then odds. */
    static void deinterleave(MemorySegment src, long s0, MemorySegment dst, long d0, int n) {
        int c = 0;
        for (; c + 32 <= n; c += 32) {
            for (int j = 0; j < 16; j++) {
                dst.set(XF, d0 + 4L * (c + j), src.get(XF, s0 + 4L * (c + 2 * j)));
                dst.set(XF, d0 + 4L * (c + 16 + j), src.get(XF, s0 + 4L * (c + 2 * j + 1)));
            }
        }
        MemorySegment.copy(src, s0 + 4L * c, dst, d0 + 4L * c, 4L * (n - c));
    }

    private static FloatVector even(IntVector v, boolean f16) {
        return f16 ? f16(v.and(0xffff)) : v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    private static FloatVector odd(IntVector v, boolean f16) {
        return f16 ? f16(v.lanewise(VectorOperators.LSHR, 16)) : v.and(0xffff0000).reinterpretAsFloats();
    }

    /** f16 bits in the low half of each lane to f32; the multiply re-biases the exponent and handles subnormals. */
    private static FloatVector f16(IntVector h) {
        FloatVector mag = h.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f);
        return mag.reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
    }

    private static float scalar(boolean f16, MemorySegment w, long at) {
        short h = w.get(I16, at);
        return f16 ? Halfs.f16ToFloat(h) : Halfs.bf16ToFloat(h);
    }

    static float dot1(boolean f16, MemorySegment w, long row, int cols, MemorySegment x, long x0) {
        FloatVector a = FloatVector.zero(F), b = a;
        int c = 0;
        for (; c + 32 <= cols; c += 32) {
            IntVector v = IntVector.fromMemorySegment(I, w, row + 2L * c, LE);
            a = even(v, f16).fma(FloatVector.fromMemorySegment(F, x, x0 + 4L * c, NATIVE), a);
            b = odd(v, f16).fma(FloatVector.fromMemorySegment(F, x, x0 + 4L * (c + 16), NATIVE), b);
        }
        float s = MatVec.sum(a.add(b));
        for (; c < cols; c++) s += scalar(f16, w, row + 2L * c) * x.get(XF, x0 + 4L * c);
        return s;
    }

    static void dot4(boolean f16, MemorySegment w, long row, int cols, MemorySegment x, long x0, long x1, long x2, long x3, float[] out) {
        FloatVector a0 = FloatVector.zero(F), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
        int c = 0;
        for (; c + 32 <= cols; c += 32) {
            IntVector v = IntVector.fromMemorySegment(I, w, row + 2L * c, LE);
            FloatVector e = even(v, f16), o = odd(v, f16);
            long p = 4L * c, q = 4L * (c + 16);
            a0 = e.fma(FloatVector.fromMemorySegment(F, x, x0 + p, NATIVE), a0);
            b0 = o.fma(FloatVector.fromMemorySegment(F, x, x0 + q, NATIVE), b0);
            a1 = e.fma(FloatVector.fromMemorySegment(F, x, x1 + p, NATIVE), a1);
            b1 = o.fma(FloatVector.fromMemorySegment(F, x, x1 + q, NATIVE), b1);
            a2 = e.fma(FloatVector.fromMemorySegment(F, x, x2 + p, NATIVE), a2);
            b2 = o.fma(FloatVector.fromMemorySegment(F, x, x2 + q, NATIVE), b2);
            a3 = e.fma(FloatVector.fromMemorySegment(F, x, x3 + p, NATIVE), a3);
            b3 = o.fma(FloatVector.fromMemorySegment(F, x, x3 + q, NATIVE), b3);
        }
        float s0 = MatVec.sum(a0.add(b0)), s1 = MatVec.sum(a1.add(b1)), s2 = MatVec.sum(a2.add(b2)), s3 = MatVec.sum(a3.add(b3));
        for (; c < cols; c++) {
            float wv = scalar(f16, w, row + 2L * c);
            long o = 4L * c;
            s0 += wv * x.get(XF, x0 + o);
            s1 += wv * x.get(XF, x1 + o);
            s2 += wv * x.get(XF, x2 + o);
            s3 += wv * x.get(XF, x3 + o);
        }
        out[0] = s0;
        out[1] = s1;
        out[2] = s2;
        out[3] = s3;
    }
}
