package dev.tandem.offload.exec;

import dev.tandem.core.backend.cpu.CpuThreadPool;
import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** CPU attention over a host cache against a direct double-precision computation, for the bf16 and f32 paths. */
class HostAttentionTest {
    @Test
    void matchesDirectAttention() {
        for (int hd : new int[] {56, 64, 128}) {
            for (boolean bf16 : new boolean[] {false, true}) check(hd, bf16);
        }
    }

    private static void check(int hd, boolean bf16) {
        int heads = 8, kvHeads = 2, seqs = 3, capacity = 48, kvDim = kvHeads * hd, qDim = heads * hd;
        SplittableRandom r = new SplittableRandom(hd * 31 + (bf16 ? 1 : 0));
        try (Arena arena = Arena.ofShared(); CpuThreadPool pool = new CpuThreadPool(2, 0);
             HostMemory mem = HostMemory.plain(1L << 30)) {
            HostKvCache cache = new HostKvCache(mem, 1, seqs, capacity, kvHeads, hd, bf16 ? HostKvCache.Format.BF16 : HostKvCache.Format.F32);
            float[][] k = new float[seqs * capacity][kvDim], v = new float[seqs * capacity][kvDim];
            for (int s = 0; s < seqs; s++) {
                for (int p = 0; p < capacity; p++) {
                    for (int c = 0; c < kvDim; c++) {
                        k[s * capacity + p][c] = round((float) r.nextGaussian(), bf16);
                        v[s * capacity + p][c] = round((float) r.nextGaussian(), bf16);
                    }
                    Codec.encode(bf16 ? DType.BF16 : DType.F32, k[s * capacity + p], 0, kvDim, cache.keys(0), cache.offset(s, p));
                    Codec.encode(bf16 ? DType.BF16 : DType.F32, v[s * capacity + p], 0, kvDim, cache.values(0), cache.offset(s, p));
                }
            }
            int[] sequences = {0, 2, 1, 2}, positions = {0, 47, 20, 5};
            int rows = sequences.length;
            float[] q = new float[rows * qDim];
            for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
            MemorySegment qs = arena.allocateFrom(ValueLayout.JAVA_FLOAT, q), out = arena.allocate(4L * rows * qDim);
            float scale = (float) (1 / Math.sqrt(hd));
            HostAttention.run(pool, qs, 0, qDim, cache, 0, sequences, positions, heads, kvHeads, hd, scale, out);
            for (int row = 0; row < rows; row++) {
                for (int h = 0; h < heads; h++) {
                    int kvh = h / (heads / kvHeads), n = positions[row] + 1;
                    double[] w = new double[n];
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int p = 0; p < n; p++) {
                        double d = 0;
                        for (int c = 0; c < hd; c++) d += q[row * qDim + h * hd + c] * k[sequences[row] * capacity + p][kvh * hd + c];
                        w[p] = d * scale;
                        max = Math.max(max, w[p]);
                    }
                    for (int p = 0; p < n; p++) sum += w[p] = Math.exp(w[p] - max);
                    for (int c = 0; c < hd; c++) {
                        double o = 0;
                        for (int p = 0; p < n; p++) o += w[p] / sum * v[sequences[row] * capacity + p][kvh * hd + c];
                        float got = out.getAtIndex(ValueLayout.JAVA_FLOAT, (long) row * qDim + h * hd + c);
                        assertEquals(o, got, 2e-5 * Math.max(1, Math.abs(o)) + 2e-5, "hd " + hd + " bf16 " + bf16 + " row " + row + " head " + h + " col " + c);
                    }
                }
            }
        }
    }

    private static float round(float x, boolean bf16) {
        if (!bf16) return x;
        return Float.intBitsToFloat(Float.floatToRawIntBits(x) & 0xffff0000);
    }
}
