package dev.tandem.core.backend.cpu;

import dev.tandem.core.tensor.Halfs;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.tandem.core.backend.cpu.MatVec.B;
import static dev.tandem.core.backend.cpu.MatVec.F;
import static dev.tandem.core.backend.cpu.MatVec.L;
import static dev.tandem.core.backend.cpu.MatVec.LE;
import static dev.tandem.core.backend.cpu.MatVec.NATIVE;

/**
 * Dot products against Q8_0 / Q4_0 rows in GGUF's block layout. Each 32-value block is converted to floats once
 * (int8 or nibble - 8, sign-extended and converted in registers), multiplied with every activation row, and
 * the block's partial sum is scaled by its fp16 scale into the row's accumulator. Same batch-invariance rule as
 * {@link MatVec}: dot4's row i follows exactly dot1's operations.
 */
final class BlockDot {
    private BlockDot() {}

    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);

    /** Quant values [e, e + L) of the block at byte {@code block}, as floats (no scale). */
    private static FloatVector quants(boolean q4, MemorySegment w, long block, int e) {
        if (!q4) return (FloatVector) ByteVector.fromMemorySegment(B, w, block + 2 + e, LE).convertShape(VectorOperators.B2F, F, 0);
        ByteVector q = ByteVector.fromMemorySegment(B, w, block + 2 + (e & 15), LE);
        q = e < 16 ? q.and((byte) 0x0f) : q.lanewise(VectorOperators.LSHR, 4).and((byte) 0x0f);
        return (FloatVector) q.sub((byte) 8).convertShape(VectorOperators.B2F, F, 0);
    }

    static float dot1(boolean q4, MemorySegment w, long row, int cols, MemorySegment x, long x0) {
        if (q4 && L == 16) return q4dot1(w, row, cols, x, x0);
        int blockBytes = q4 ? 18 : 34;
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0, c = 0; c < cols; b++, c += 32) {
            long block = row + (long) b * blockBytes;
            FloatVector d = FloatVector.broadcast(F, Halfs.f16ToFloat(w.get(I16, block)));
            FloatVector s = FloatVector.zero(F);
            for (int e = 0; e < 32; e += L) s = quants(q4, w, block, e).fma(FloatVector.fromMemorySegment(F, x, x0 + 4L * (c + e), NATIVE), s);
            acc = s.fma(d, acc);
        }
        return MatVec.sum(acc);
    }

    static void dot4(boolean q4, MemorySegment w, long row, int cols, MemorySegment x, long x0, long x1, long x2, long x3, float[] out) {
        if (q4 && L == 16) {
            q4dot4(w, row, cols, x, x0, x1, x2, x3, out);
            return;
        }
        int blockBytes = q4 ? 18 : 34;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0, c = 0; c < cols; b++, c += 32) {
            long block = row + (long) b * blockBytes;
            FloatVector d = FloatVector.broadcast(F, Halfs.f16ToFloat(w.get(I16, block)));
            FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0;
            for (int e = 0; e < 32; e += L) {
                FloatVector q = quants(q4, w, block, e);
                long o = 4L * (c + e);
                s0 = q.fma(FloatVector.fromMemorySegment(F, x, x0 + o, NATIVE), s0);
                s1 = q.fma(FloatVector.fromMemorySegment(F, x, x1 + o, NATIVE), s1);
                s2 = q.fma(FloatVector.fromMemorySegment(F, x, x2 + o, NATIVE), s2);
                s3 = q.fma(FloatVector.fromMemorySegment(F, x, x3 + o, NATIVE), s3);
            }
            a0 = s0.fma(d, a0);
            a1 = s1.fma(d, a1);
            a2 = s2.fma(d, a2);
            a3 = s3.fma(d, a3);
        }
        out[0] = MatVec.sum(a0);
        out[1] = MatVec.sum(a1);
        out[2] = MatVec.sum(a2);
        out[3] = MatVec.sum(a3);
    }

    // Q4_0 with 16 float lanes: the block's 16 bytes hold values 0..15 (low nibbles) and 16..31 (high nibbles).
    private static FloatVector lo(ByteVector q) {
        return (FloatVector) q.and((byte) 0x0f).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0);
    }

    private static FloatVector hi(ByteVector q) {
        return (FloatVector) q.lanewise(VectorOperators.LSHR, 4).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0);
    }

    private static float q4dot1(MemorySegment w, long row, int cols, MemorySegment x, long x0) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0, c = 0; c < cols; b++, c += 32) {
            long block = row + b * 18L;
            FloatVector d = FloatVector.broadcast(F, Halfs.f16ToFloat(w.get(I16, block)));
            ByteVector q = ByteVector.fromMemorySegment(B, w, block + 2, LE);
            long o = x0 + 4L * c;
            FloatVector s = lo(q).fma(FloatVector.fromMemorySegment(F, x, o, NATIVE), FloatVector.zero(F));
            s = hi(q).fma(FloatVector.fromMemorySegment(F, x, o + 64, NATIVE), s);
            acc = s.fma(d, acc);
        }
        return MatVec.sum(acc);
    }

    private static void q4dot4(MemorySegment w, long row, int cols, MemorySegment x, long x0, long x1, long x2, long x3, float[] out) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, z = a0;
        for (int b = 0, c = 0; c < cols; b++, c += 32) {
            long block = row + b * 18L;
            FloatVector d = FloatVector.broadcast(F, Halfs.f16ToFloat(w.get(I16, block)));
            ByteVector q = ByteVector.fromMemorySegment(B, w, block + 2, LE);
            FloatVector l = lo(q), h = hi(q);
            long o = 4L * c;
            a0 = h.fma(FloatVector.fromMemorySegment(F, x, x0 + o + 64, NATIVE), l.fma(FloatVector.fromMemorySegment(F, x, x0 + o, NATIVE), z)).fma(d, a0);
            a1 = h.fma(FloatVector.fromMemorySegment(F, x, x1 + o + 64, NATIVE), l.fma(FloatVector.fromMemorySegment(F, x, x1 + o, NATIVE), z)).fma(d, a1);
            a2 = h.fma(FloatVector.fromMemorySegment(F, x, x2 + o + 64, NATIVE), l.fma(FloatVector.fromMemorySegment(F, x, x2 + o, NATIVE), z)).fma(d, a2);
            a3 = h.fma(FloatVector.fromMemorySegment(F, x, x3 + o + 64, NATIVE), l.fma(FloatVector.fromMemorySegment(F, x, x3 + o, NATIVE), z)).fma(d, a3);
        }
        out[0] = MatVec.sum(a0);
        out[1] = MatVec.sum(a1);
        out[2] = MatVec.sum(a2);
        out[3] = MatVec.sum(a3);
    }
}
