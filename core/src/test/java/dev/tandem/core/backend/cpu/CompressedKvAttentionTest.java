package dev.tandem.core.backend.cpu;

import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.quant.GroupQuant4;
import dev.tandem.core.quant.Gq4Layout;
import dev.tandem.core.tensor.DType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CPU backend's 4-bit KV cache: attention over it is attention over the round-tripped keys and values. */
class CompressedKvAttentionTest {

    /**
     * Attention over a GQ4 cache equals, bit for bit, attention over an f32 cache holding the keys and values
     * compressed and decompressed per (token, KV head); and it stays near the uncompressed result.
     */
    @ParameterizedTest(name = "heads {0}/{1} head_dim {2}")
    @CsvSource({"8, 4, 56, 16", "4, 2, 64, 4", "6, 2, 128, 16", "2, 2, 8, 4", "4, 1, 100, 8"})
    void attentionOverGq4CacheIsAttentionOverRoundTrippedValues(int heads, int kvHeads, int headDim, int blockSize) {
        Random rnd = new Random(headDim);
        int[] qLens = {70, 1, 1}, ctxLens = {70, 200, 9};
        BackendTestData.Attn exact = BackendTestData.Attn.random(rnd, heads, kvHeads, headDim, blockSize, qLens, ctxLens);
        BackendTestData.Attn compressed = new BackendTestData.Attn(exact.layout().withFormat(KvLayout.Format.GQ4), heads, qLens, ctxLens,
                exact.tables(), exact.keys(), exact.values(), exact.q());
        BackendTestData.Attn roundTripped = new BackendTestData.Attn(exact.layout(), heads, qLens, ctxLens, exact.tables(),
                roundTrip(exact.keys(), kvHeads, headDim), roundTrip(exact.values(), kvHeads, headDim), exact.q());
        try (CpuBackend b = new CpuBackend(2)) {
            float[][] got = compressed.run(b), want = roundTripped.run(b), f32 = exact.run(b);
            double err = 0;
            int n = 0;
            for (int r = 0; r < want.length; r++) {
                assertArrayEquals(want[r], got[r], "row " + r);
                for (int c = 0; c < f32[r].length; c++, n++) err += Math.abs(got[r][c] - f32[r][c]);
            }
            // Outputs are convex combinations of values each within half a scale (unit Gaussians: scales near 0.4),
            // the weights moved a little by the keys' error: on average well under 0.1 away from exact attention.
            assertTrue(err / n < 0.1, "mean error " + err / n);
        }
    }

    /** A slot of head_dim 56 takes a 36-byte record per KV head (32 bytes of nibbles, fp16 min and scale). */
    @ParameterizedTest
    @CsvSource({"56, 36", "64, 36", "128, 72", "80, 72"})
    void slotBytesFollowTheGq4Layout(int headDim, long recordBytes) {
        KvLayout l = new KvLayout(8, 4, 16, 4, headDim, KvLayout.Format.GQ4);
        assertEquals(4 * recordBytes, l.slotBytes());
        assertEquals(2L * 8 * 4 * recordBytes, l.bytesPerToken());
        assertEquals(2L * 8 * 4 * headDim * 4, l.withFormat(KvLayout.Format.F32).bytesPerToken());
    }

    private static float[][][] roundTrip(float[][][] rows, int kvHeads, int headDim) {
        float[][][] out = new float[rows.length][][];
        try (Arena arena = Arena.ofConfined()) {
            for (int s = 0; s < rows.length; s++) {
                out[s] = new float[rows[s].length][];
                for (int t = 0; t < rows[s].length; t++) {
                    GroupQuant4.Packed p = GroupQuant4.quantize(MemorySegment.ofArray(rows[s][t]), DType.F32, 1, GroupQuant4.KV_RANGE, arena, kvHeads, headDim);
                    assertEquals(Gq4Layout.of(1, kvHeads, headDim), p.layout());
                    out[s][t] = GroupQuant4.dequantize(p);
                }
            }
        }
        return out;
    }
}
