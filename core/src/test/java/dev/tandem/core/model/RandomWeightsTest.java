package dev.tandem.core.model;

import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.VectorCodec;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RandomWeightsTest {
    @Test
    void vectorLoopGivesTheScalarReferenceValuesForAwkwardWidths() {
        for (int cols : new int[] {1, 7, 8, 13, 64, 67, 448}) {
            float[] v = new float[3 * cols], s = new float[3 * cols];
            RandomWeights.rows(5, "model.layers.0.mlp.up_proj.weight", 11, 3, cols, v);
            RandomWeights.rowsScalar(5, "model.layers.0.mlp.up_proj.weight", 11, 3, cols, s);
            assertArrayEquals(s, v, "cols " + cols);
        }
    }

    @Test
    void aRowDependsOnlyOnSeedTensorAndRowIndex() {
        float[] block = new float[10 * 32], one = new float[32];
        RandomWeights.rows(3, "w", 100, 10, 32, block);
        RandomWeights.rows(3, "w", 107, 1, 32, one);
        assertArrayEquals(java.util.Arrays.copyOfRange(block, 7 * 32, 8 * 32), one);
        float[] other = new float[32];
        RandomWeights.rows(4, "w", 107, 1, 32, other);
        assertNotEquals(one[0], other[0]);
        RandomWeights.rows(3, "v", 107, 1, 32, other);
        assertNotEquals(one[0], other[0]);
    }

    @Test
    void valuesHaveMeanZeroAndStdTwoHundredths() {
        int rows = 256, cols = 4096;
        float[] v = new float[rows * cols];
        RandomWeights.rows(1, "model.embed_tokens.weight", 0, rows, cols, v);
        double sum = 0, sq = 0, max = 0;
        for (float x : v) { sum += x; sq += (double) x * x; max = Math.max(max, Math.abs(x)); }
        double mean = sum / v.length, std = Math.sqrt(sq / v.length - mean * mean);
        // 1M samples: the standard error of the mean is 2e-5 and of the std about 1.4e-5.
        assertEquals(0, mean, 1e-4, "mean");
        assertEquals(0.02, std, 1e-4, "std");
        assertTrue(max > 0.06 && max <= 0.0693, "Irwin-Hall(4) reaches close to 3.46 sd, got " + max);
        float[] norm = new float[64];
        RandomWeights.rows(1, "model.layers.3.input_layernorm.weight", 0, 1, 64, norm);
        for (float x : norm) assertEquals(1f, x);
    }

    @Test
    void vectorBf16EncodingIsByteForByteTheScalarOne() {
        float[] v = new float[1000];
        RandomWeights.rows(9, "w", 0, 1, v.length, v);
        v[3] = Float.NaN; v[4] = Float.POSITIVE_INFINITY; v[5] = -0f; v[6] = 1.00390625f; v[7] = 1.01171875f; v[8] = Float.MIN_VALUE;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment a = arena.allocate(2000), b = arena.allocate(2000);
            assertEquals(2000, VectorCodec.encode(DType.BF16, v, 0, v.length, a, 0));
            Codec.encode(DType.BF16, v, 0, v.length, b, 0);
            assertEquals(-1, a.mismatch(b));
        }
    }
}
