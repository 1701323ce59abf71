package dev.tandem.core.backend.cpu;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.Weight;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Arrays;
import java.util.Random;

import static dev.tandem.core.backend.cpu.BackendTestData.activation;
import static dev.tandem.core.backend.cpu.BackendTestData.randomRows;
import static dev.tandem.core.backend.cpu.BackendTestData.read;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * The serving engine relies on a token's result being the same bits whether it runs alone or in a batch:
 * every row of a batch must equal, bit for bit, the same row computed alone, on one thread or several.
 */
class CpuBatchInvarianceTest {

    @ParameterizedTest
    @EnumSource(DType.class)
    void matmulRowIsTheSameInAnyBatch(DType type) {
        Random rnd = new Random(7 + type.ordinal());
        int rows = 70, cols = type.isQuantized() ? 224 : 100;
        Tensor w = BackendTestData.matrix(rnd, type, rows, cols);
        float[][] x = randomRows(rnd, 17, cols, 1f);
        try (Backend two = new CpuBackend(2); Backend one = new CpuBackend(1)) {
            float[][] alone = new float[x.length][];
            for (int i = 0; i < x.length; i++) alone[i] = matmul(two, w, new float[][]{x[i]})[0];
            for (int size : new int[]{3, 8, 17}) {
                for (Backend b : new Backend[]{two, one}) {
                    // Every window of `size` rows, so each row is seen at every position of a tile.
                    for (int start = 0; start + size <= x.length; start++) {
                        float[][] got = matmul(b, w, Arrays.copyOfRange(x, start, start + size));
                        for (int i = 0; i < size; i++) {
                            assertArrayEquals(alone[start + i], got[i], type + " row " + (start + i) + " in a batch of "
                                    + size + " at " + i + " on " + ((CpuBackend) b).pool().threads() + " threads");
                        }
                    }
                }
            }
        }
    }

    private static float[][] matmul(Backend b, Tensor w, float[][] x) {
        Weight wt = b.upload(w);
        Activation out = b.allocate(x.length, w.rows());
        b.matmul(activation(b, x), wt, out);
        return read(b, out);
    }

    @Test
    void attentionRowIsTheSameInAnyBatch() {
        Random rnd = new Random(11);
        // Sequence 0: a decode at context 40; 1: a prefill chunk of 6 with 10 cached; 2, 3: decodes.
        BackendTestData.Attn all = BackendTestData.Attn.random(rnd, 4, 2, 56, 4, new int[]{1, 6, 1, 1}, new int[]{40, 16, 3, 77});
        try (Backend two = new CpuBackend(2); Backend one = new CpuBackend(1)) {
            float[][] batched = all.run(two);
            assertRowsEqual(batched, all.run(one), 0, "one thread");
            int row = 0;
            for (int s = 0; s < all.qLens().length; s++) {
                BackendTestData.Attn alone = new BackendTestData.Attn(all.layout(), all.heads(),
                        new int[]{all.qLens()[s]}, new int[]{all.ctxLens()[s]}, new int[][]{all.tables()[s]},
                        new float[][][]{all.keys()[s]}, new float[][][]{all.values()[s]},
                        Arrays.copyOfRange(all.q(), row, row + all.qLens()[s]));
                float[][] got = alone.run(two);
                assertRowsEqual(Arrays.copyOfRange(batched, row, row + got.length), got, 0, "sequence " + s + " alone");
                row += all.qLens()[s];
            }
        }
    }

    /** Rows of a long batch are processed in passes bounded by memory; the pass a row lands in must not matter. */
    @Test
    void attentionIsTheSameInAnyPass() {
        Random rnd = new Random(13);
        BackendTestData.Attn all = BackendTestData.Attn.random(rnd, 4, 2, 48, 16, new int[]{9, 1, 5}, new int[]{150, 90, 5});
        int saved = CpuAttention.partFloats;
        try (Backend b = new CpuBackend(2)) {
            float[][] onePass = all.run(b);
            CpuAttention.partFloats = 1000; // a chunk's partials are 4 heads * 50 floats: a few rows per pass
            assertRowsEqual(onePass, all.run(b), 0, "several passes");
        } finally {
            CpuAttention.partFloats = saved;
        }
    }

    @Test
    void rowOpsAreTheSameInAnyBatch() {
        Random rnd = new Random(5);
        int cols = 4099;
        float[][] x = randomRows(rnd, 40, cols, 2f), y = randomRows(rnd, 40, cols, 2f);
        Tensor gamma = BackendTestData.tensor("g", DType.F32, new long[]{cols}, BackendTestData.gaussian(rnd, cols, 1f));
        try (CpuBackend b = new CpuBackend(2)) {
            Weight g = b.upload(gamma);
            Activation big = b.allocate(40, cols), one = b.allocate(1, cols);
            b.rmsNorm(activation(b, x), g, 1e-5f, big);
            b.rmsNorm(activation(b, new float[][]{x[13]}), g, 1e-5f, one);
            assertArrayEquals(read(b, big)[13], read(b, one)[0], "rmsNorm");
            b.swiglu(activation(b, x), activation(b, y), big);
            b.swiglu(activation(b, new float[][]{x[13]}), activation(b, new float[][]{y[13]}), one);
            assertArrayEquals(read(b, big)[13], read(b, one)[0], "swiglu");
        }
    }

    private static void assertRowsEqual(float[][] want, float[][] got, int from, String what) {
        for (int r = from; r < want.length; r++) assertArrayEquals(want[r], got[r], what + " row " + r);
    }
}
