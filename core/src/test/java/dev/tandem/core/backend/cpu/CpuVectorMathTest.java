package dev.tandem.core.backend.cpu;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CpuVectorMathTest {

    /** The vectorised exp stays within 1e-6 relative of the exact value over the range softmax and SiLU use. */
    @Test
    void expIsAccurate() {
        Random rnd = new Random(1);
        float[] x = new float[VectorMath.LANES], y = new float[VectorMath.LANES];
        double worst = 0;
        for (int i = 0; i < 200_000; i++) {
            for (int l = 0; l < x.length; l++) x[l] = (float) (rnd.nextDouble() * 175 - 87);
            if (i == 0) {
                x[0] = 0;
                x[1] = -87;
                x[2] = 88;
                x[3] = 1e-8f;
            }
            VectorMath.exp(FloatVector.fromArray(VectorMath.F, x, 0)).intoArray(y, 0);
            for (int l = 0; l < x.length; l++) {
                double want = Math.exp(x[l]);
                worst = Math.max(worst, Math.abs(y[l] - want) / want);
            }
        }
        System.out.printf("VectorMath.exp: worst relative error %.3g%n", worst);
        assertTrue(worst < 1e-6, "relative error " + worst);
        VectorMath.exp(FloatVector.zero(VectorMath.F)).intoArray(y, 0);
        assertEquals(1f, y[0], 0f, "exp(0) must be exactly 1 (attention's chunk combine relies on it)");
    }

    @Test
    void sumIsThePairwiseTree() {
        Random rnd = new Random(2);
        float[] v = new float[VectorMath.LANES];
        for (int i = 0; i < 1000; i++) {
            for (int l = 0; l < v.length; l++) v[l] = (float) rnd.nextGaussian() * (1 << rnd.nextInt(20));
            float[] t = v.clone();
            for (int width = 1; width < t.length; width *= 2) {
                for (int l = 0; l < t.length; l += 2 * width) t[l] = t[l] + t[l + width];
            }
            assertEquals(Float.floatToIntBits(t[0]), Float.floatToIntBits(VectorMath.sum(FloatVector.fromArray(VectorMath.F, v, 0))));
        }
    }
}
