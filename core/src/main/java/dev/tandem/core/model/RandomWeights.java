package dev.tandem.core.model;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * Seeded random weights for benchmarks at real shapes: matrices normal(0, 0.02), norm weights 1.
 *
 * <p>The generator is counter-based: value j of row r of a tensor is a pure function of (seed, tensor name, r, j),
 * namely splitmix64's finaliser applied to {@code rowKey + (j + 1) * golden gamma}. So any split of the rows
 * among threads writes the same bytes, and no generator state is carried from one value to the next (the loop
 * has no dependency chain, which keeps it at a few ns per value).
 *
 * <p>The normal distribution is approximated by the central limit theorem: each value is the sum of the four
 * 16-bit lanes of one 64-bit output (Irwin-Hall with n = 4), centred and scaled so that its mean is 0 and its
 * standard deviation exactly {@code std}. Its tails stop at ±3.46 sd and its excess kurtosis is -0.3; for
 * benchmark weights (bandwidth, FLOPs, numerically tame logits) only mean and variance matter.
 *
 * <p>The loop runs on the Vector API (a lane per column; integer sums below 2^24 convert to float exactly), and
 * gives the same floats as the scalar loop, which {@link #rowsScalar} keeps as the reference.
 */
public final class RandomWeights {
    public static final float STD = 0.02f;
    private static final long GAMMA = 0x9E3779B97F4A7C15L;
    /** Mean and standard deviation of the sum of four uniform integers in [0, 65535]. */
    private static final VectorSpecies<Long> L = LongVector.SPECIES_PREFERRED;
    /** Floats as many as the longs: half the bits. */
    private static final VectorSpecies<Float> F = VectorSpecies.of(float.class, VectorShape.forBitSize(L.vectorBitSize() / 2));
    private static final double SUM_MEAN = 4 * 65535 / 2.0, SUM_SD = Math.sqrt(4 * (65536.0 * 65536.0 - 1) / 12);

    private static final float SCALE = (float) (STD / SUM_SD), OFFSET = (float) SUM_MEAN;

    private RandomWeights() {}

    /** Fills dst[0, count * cols) with rows [first, first + count) of the named tensor. */
    public static void rows(long seed, String name, long first, int count, int cols, float[] dst) {
        fill(seed, name, first, count, cols, dst, SCALE, true);
    }

    /**
     * As {@link #rows}, with standard deviation {@code std} instead of {@value #STD} (norm weights stay 1): the same
     * values times std / 0.02. Test models use a larger one so that the layers, not the biases and embeddings alone,
     * decide the next token.
     */
    public static void rows(long seed, String name, long first, int count, int cols, float[] dst, float std) {
        fill(seed, name, first, count, cols, dst, (float) (std / SUM_SD), true);
    }

    /** The same values as {@link #rows}, one at a time: the reference for the vector loop. */
    static void rowsScalar(long seed, String name, long first, int count, int cols, float[] dst) {
        fill(seed, name, first, count, cols, dst, SCALE, false);
    }

    private static void fill(long seed, String name, long first, int count, int cols, float[] dst, float scale, boolean vector) {
        if (name.endsWith("norm.weight")) {
            Arrays.fill(dst, 0, count * cols, 1f);
            return;
        }
        long tensorKey = mix(seed ^ mix(fnv1a(name)));
        for (int r = 0; r < count; r++) {
            long rowKey = mix(tensorKey + (first + r) * GAMMA);
            if (vector) row(rowKey, dst, r * cols, cols, OFFSET, scale);
            else for (int j = 0; j < cols; j++) dst[r * cols + j] = value(rowKey, j, OFFSET, scale);
        }
    }

    /** One row; a method of its own so that the JIT compiles it after a few rows, not after a whole block. */
    private static void row(long rowKey, float[] dst, int base, int cols, float offset, float scale) {
        int lanes = L.length();
        LongVector step = LongVector.broadcast(L, lanes * GAMMA);
        LongVector z = LongVector.zero(L).addIndex(1).add(1).mul(GAMMA).add(rowKey); // rowKey + (j + 1) * GAMMA in lane j
        int j = 0;
        for (; j <= cols - lanes; j += lanes, z = z.add(step)) {
            LongVector x = z.lanewise(VectorOperators.LSHR, 30).lanewise(VectorOperators.XOR, z).mul(0xBF58476D1CE4E5B9L);
            x = x.lanewise(VectorOperators.LSHR, 27).lanewise(VectorOperators.XOR, x).mul(0x94D049BB133111EBL);
            x = x.lanewise(VectorOperators.LSHR, 31).lanewise(VectorOperators.XOR, x);
            LongVector sum = x.and(0xFFFF).add(x.lanewise(VectorOperators.LSHR, 16).and(0xFFFF))
                    .add(x.lanewise(VectorOperators.LSHR, 32).and(0xFFFF)).add(x.lanewise(VectorOperators.LSHR, 48));
            FloatVector v = (FloatVector) sum.convertShape(VectorOperators.L2F, F, 0);
            v.sub(offset).mul(scale).intoArray(dst, base + j);
        }
        for (; j < cols; j++) dst[base + j] = value(rowKey, j, offset, scale);
    }

    private static float value(long rowKey, int j, float offset, float scale) {
        long x = mix(rowKey + (j + 1) * GAMMA);
        long sum = (x & 0xFFFF) + ((x >>> 16) & 0xFFFF) + ((x >>> 32) & 0xFFFF) + (x >>> 48);
        return (sum - offset) * scale;
    }

    /** splitmix64's output function (Steele, Lea, Flood 2014). */
    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private static long fnv1a(String s) {
        long h = 0xcbf29ce484222325L;
        for (int i = 0; i < s.length(); i++) h = (h ^ s.charAt(i)) * 0x100000001b3L;
        return h;
    }
}
