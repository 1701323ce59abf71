package dev.tandem.core.backend.cpu;

import dev.tandem.core.backend.Rope;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * The row-wise ops, vectorised with masked tails. Each works on one row at a time with a fixed instruction
 * sequence, so a row's result is the same alone or in a batch; {@link CpuBackend} splits the rows over
 * threads only when there is enough work to pay for a dispatch.
 */
final class CpuOps {
    private static final VectorSpecies<Float> F = MatmulKernel.F;
    private static final int L = F.length();
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final VectorShuffle<Float> SWAP_PAIRS = VectorShuffle.fromOp(F, i -> i ^ 1);

    private CpuOps() {}

    static void rmsNorm(CpuActivation x, int r, float[] gamma, float eps, CpuActivation out) {
        int n = x.cols();
        MemorySegment xs = x.segment(), os = out.segment();
        long xo = x.offset(r, 0), oo = out.offset(r, 0);
        FloatVector ss = FloatVector.zero(F);
        for (int c = 0; c < n; c += L) {
            VectorMask<Float> m = F.indexInRange(c, n);
            FloatVector v = FloatVector.fromMemorySegment(F, xs, xo + 4L * c, LE, m);
            ss = v.fma(v, ss);
        }
        float inv = (float) (1.0 / Math.sqrt((double) VectorMath.sum(ss) / n + eps));
        for (int c = 0; c < n; c += L) {
            VectorMask<Float> m = F.indexInRange(c, n);
            FloatVector v = FloatVector.fromMemorySegment(F, xs, xo + 4L * c, LE, m);
            v.mul(inv).mul(FloatVector.fromArray(F, gamma, c, m)).intoMemorySegment(os, oo + 4L * c, LE, m);
        }
    }

    /** Two passes (mean, then the variance about it): no cancellation from sum(x^2) - n * mean^2. */
    static void layerNorm(CpuActivation x, int r, float[] gamma, float[] beta, float eps, CpuActivation out) {
        int n = x.cols();
        MemorySegment xs = x.segment(), os = out.segment();
        long xo = x.offset(r, 0), oo = out.offset(r, 0);
        FloatVector sum = FloatVector.zero(F);
        for (int c = 0; c < n; c += L) {
            sum = sum.add(FloatVector.fromMemorySegment(F, xs, xo + 4L * c, LE, F.indexInRange(c, n)));
        }
        float mean = VectorMath.sum(sum) / n;
        FloatVector ss = FloatVector.zero(F);
        for (int c = 0; c < n; c += L) {
            VectorMask<Float> m = F.indexInRange(c, n);
            FloatVector d = FloatVector.fromMemorySegment(F, xs, xo + 4L * c, LE, m).sub(mean);
            ss = ss.add(d.mul(d), m);
        }
        float inv = (float) (1.0 / Math.sqrt((double) VectorMath.sum(ss) / n + eps));
        for (int c = 0; c < n; c += L) {
            VectorMask<Float> m = F.indexInRange(c, n);
            FloatVector v = FloatVector.fromMemorySegment(F, xs, xo + 4L * c, LE, m).sub(mean).mul(inv);
            v.fma(FloatVector.fromArray(F, gamma, c, m), FloatVector.fromArray(F, beta, c, m)).intoMemorySegment(os, oo + 4L * c, LE, m);
        }
    }

    static void add(CpuActivation acc, CpuActivation x, int r) {
        int n = acc.cols();
        MemorySegment as = acc.segment(), xs = x.segment();
        long ao = acc.offset(r, 0), xo = x.offset(r, 0);
        for (int c = 0; c < n; c += L) {
            VectorMask<Float> m = F.indexInRange(c, n);
            FloatVector a = FloatVector.fromMemorySegment(F, as, ao + 4L * c, LE, m);
            a.add(FloatVector.fromMemorySegment(F, xs, xo + 4L * c, LE, m)).intoMemorySegment(as, ao + 4L * c, LE, m);
        }
    }

    /** x += bias (bias null: nothing), then with {@code relu} x = max(x, 0): OPT's fc1 bias and activation in one pass. */
    static void addBias(CpuActivation x, int r, float[] bias, boolean relu) {
        int n = x.cols();
        MemorySegment xs = x.segment();
        long xo = x.offset(r, 0);
        for (int c = 0; c < n; c += L) {
            VectorMask<Float> m = F.indexInRange(c, n);
            FloatVector a = FloatVector.fromMemorySegment(F, xs, xo + 4L * c, LE, m);
            if (bias != null) a = a.add(FloatVector.fromArray(F, bias, c, m));
            if (relu) a = a.max(0f);
            a.intoMemorySegment(xs, xo + 4L * c, LE, m);
        }
    }

    /** out = silu(g) * u = g / (1 + e^-g) * u. */
    static void swiglu(CpuActivation gate, CpuActivation up, CpuActivation out, int r) {
        int n = gate.cols();
        MemorySegment gs = gate.segment(), us = up.segment(), os = out.segment();
        long go = gate.offset(r, 0), uo = up.offset(r, 0), oo = out.offset(r, 0);
        for (int c = 0; c < n; c += L) {
            VectorMask<Float> m = F.indexInRange(c, n);
            FloatVector g = FloatVector.fromMemorySegment(F, gs, go + 4L * c, LE, m);
            FloatVector u = FloatVector.fromMemorySegment(F, us, uo + 4L * c, LE, m);
            g.div(VectorMath.exp(g.neg()).add(1f)).mul(u).intoMemorySegment(os, oo + 4L * c, LE, m);
        }
    }

    /**
     * Rotates every head of row r by position pos. Products and sums are separate roundings, in the reference's
     * order (x0*c - x1*s, x0*s + x1*c), so the result is bit-identical to it. cs/sn are scratch of headDim.
     */
    static void rope(CpuActivation x, int r, int heads, int pos, Rope rope, float[] cs, float[] sn) {
        int hd = rope.headDim(), half = hd / 2;
        float[] cos = rope.cosTable(), sin = rope.sinTable();
        int t = pos * half;
        if (rope.style() == Rope.Style.INTERLEAVED) {
            // Pairs (2i, 2i+1): out = x * [c, c] + swap(x) * [-s, s].
            for (int i = 0; i < half; i++) {
                cs[2 * i] = cs[2 * i + 1] = cos[t + i];
                sn[2 * i] = -sin[t + i];
                sn[2 * i + 1] = sin[t + i];
            }
            ropeInterleaved(x, r, heads, hd, cs, sn);
        } else {
            ropeHalf(x, r, heads, hd, cos, sin, t);
        }
    }

    // One method per style keeps each small enough for C1 (see MatmulKernel).

    private static void ropeInterleaved(CpuActivation x, int r, int heads, int hd, float[] cs, float[] sn) {
        MemorySegment xs = x.segment();
        for (int h = 0; h < heads; h++) {
            long base = x.offset(r, h * hd);
            for (int d = 0; d < hd; d += L) {
                VectorMask<Float> m = F.indexInRange(d, hd);
                FloatVector v = FloatVector.fromMemorySegment(F, xs, base + 4L * d, LE, m);
                FloatVector a = v.mul(FloatVector.fromArray(F, cs, d, m));
                FloatVector b = v.rearrange(SWAP_PAIRS).mul(FloatVector.fromArray(F, sn, d, m));
                a.add(b).intoMemorySegment(xs, base + 4L * d, LE, m);
            }
        }
    }

    private static void ropeHalf(CpuActivation x, int r, int heads, int hd, float[] cos, float[] sin, int t) {
        MemorySegment xs = x.segment();
        int half = hd / 2;
        for (int h = 0; h < heads; h++) {
            long b0 = x.offset(r, h * hd), b1 = x.offset(r, h * hd + half);
            for (int i = 0; i < half; i += L) {
                VectorMask<Float> m = F.indexInRange(i, half);
                FloatVector v0 = FloatVector.fromMemorySegment(F, xs, b0 + 4L * i, LE, m);
                FloatVector v1 = FloatVector.fromMemorySegment(F, xs, b1 + 4L * i, LE, m);
                FloatVector c = FloatVector.fromArray(F, cos, t + i, m), s = FloatVector.fromArray(F, sin, t + i, m);
                v0.mul(c).sub(v1.mul(s)).intoMemorySegment(xs, b0 + 4L * i, LE, m);
                v0.mul(s).add(v1.mul(c)).intoMemorySegment(xs, b1 + 4L * i, LE, m);
            }
        }
    }
}
