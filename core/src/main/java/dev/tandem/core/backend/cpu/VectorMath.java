package dev.tandem.core.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector helpers built only from lane-wise IEEE operations, so they give the same bits in the interpreter and
 * in JIT-compiled code (unlike reduceLanes, whose order is unspecified, or the EXP operator, whose
 * intrinsic and fallback differ).
 */
final class VectorMath {
    static final VectorSpecies<Float> F = MatmulKernel.F;
    static final int LANES = F.length();
    /** Lane i takes lane i ^ d: adjacent lanes, pairs, quads, octets swap places. */
    static final VectorShuffle<Float> SWAP1 = swap(1), SWAP2 = swap(2), SWAP4 = swap(4), SWAP8 = swap(8);

    private VectorMath() {}

    private static VectorShuffle<Float> swap(int d) {
        return VectorShuffle.fromOp(F, i -> d < LANES ? i ^ d : i);
    }

    /**
     * Sum of the lanes as a pairwise tree over adjacent lanes, ((l0+l1)+(l2+l3))+...: a fixed order.
     * (Supports 8 or 16 lanes.)
     */
    static float sum(FloatVector v) {
        v = v.add(v.rearrange(SWAP1));
        v = v.add(v.rearrange(SWAP2));
        v = v.add(v.rearrange(SWAP4));
        if (LANES == 16) v = v.add(v.rearrange(SWAP8));
        return v.lane(0);
    }

    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693145751953125f;
    private static final float LN2_LO = 1.42860682030941723212e-6f;
    private static final float ROUND = 0x1.8p23f;

    /**
     * e^x in f32, within 2e-7 relative of the exact value for x in [-87, 88] (inputs outside are clamped:
     * results there are ~1e-38 or ~1.6e38, fine for softmax and SiLU). Range reduction x = n ln2 + r with
     * |r| <= ln2/2, then a degree-7 Taylor polynomial (truncation below 5e-9) and 2^n from the exponent bits.
     */
    static FloatVector exp(FloatVector x) {
        x = x.max(-87.0f).min(88.0f);
        FloatVector t = x.fma(FloatVector.broadcast(F, LOG2E), FloatVector.broadcast(F, ROUND));
        FloatVector n = t.sub(ROUND);
        IntVector ni = t.reinterpretAsInts().sub(Float.floatToRawIntBits(ROUND));
        FloatVector r = n.fma(FloatVector.broadcast(F, -LN2_HI), x);
        r = n.fma(FloatVector.broadcast(F, -LN2_LO), r);
        FloatVector p = FloatVector.broadcast(F, 1f / 5040);
        p = p.fma(r, FloatVector.broadcast(F, 1f / 720));
        p = p.fma(r, FloatVector.broadcast(F, 1f / 120));
        p = p.fma(r, FloatVector.broadcast(F, 1f / 24));
        p = p.fma(r, FloatVector.broadcast(F, 1f / 6));
        p = p.fma(r, FloatVector.broadcast(F, 0.5f));
        p = p.fma(r, FloatVector.broadcast(F, 1f));
        p = p.fma(r, FloatVector.broadcast(F, 1f));
        FloatVector scale = ni.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return p.mul(scale);
    }
}
