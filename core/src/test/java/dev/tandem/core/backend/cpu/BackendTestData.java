package dev.tandem.core.backend.cpu;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.AttentionBatch;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** Random tensors, activations and attention batches for backend tests, built only through the Backend seam. */
final class BackendTestData {
    private BackendTestData() {}

    static float[] gaussian(Random rnd, int n, float scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) rnd.nextGaussian() * scale;
        return v;
    }

    /** A tensor of the given values encoded as type, in memory deliberately not aligned (as mmapped slices may be). */
    static Tensor tensor(String name, DType type, long[] shape, float[] values) {
        long bytes = type.bytesFor(values.length);
        MemorySegment seg = Arena.ofAuto().allocate(bytes + 8, 8).asSlice(2, bytes);
        Codec.encode(type, values, 0, values.length, seg, 0);
        return new Tensor(name, type, shape, seg);
    }

    static Tensor matrix(Random rnd, DType type, int rows, int cols) {
        return tensor("w", type, new long[]{rows, cols}, gaussian(rnd, rows * cols, 0.5f));
    }

    /** An activation holding these rows, written through embed of an F32 table (the only host-to-backend path). */
    static Activation activation(Backend b, float[][] rows) {
        int cols = rows[0].length;
        float[] flat = new float[rows.length * cols];
        for (int r = 0; r < rows.length; r++) System.arraycopy(rows[r], 0, flat, r * cols, cols);
        Activation a = b.allocate(rows.length, cols);
        int[] ids = new int[rows.length];
        for (int i = 0; i < ids.length; i++) ids[i] = i;
        b.embed(b.upload(tensor("act", DType.F32, new long[]{rows.length, cols}, flat)), ids, a);
        return a;
    }

    static float[][] randomRows(Random rnd, int rows, int cols, float scale) {
        float[][] r = new float[rows][];
        for (int i = 0; i < rows; i++) r[i] = gaussian(rnd, cols, scale);
        return r;
    }

    static float[][] read(Backend b, Activation a) {
        float[][] out = new float[a.rows()][a.cols()];
        for (int r = 0; r < a.rows(); r++) b.read(a, r, out[r]);
        return out;
    }

    /** A shuffled, non-contiguous assignment of cache blocks to sequences of the given context lengths. */
    static int[][] blockTables(Random rnd, int[] ctxLens, int blockSize, int numBlocks) {
        List<Integer> free = new ArrayList<>();
        for (int i = 0; i < numBlocks; i++) free.add(i);
        java.util.Collections.shuffle(free, rnd);
        int[][] tables = new int[ctxLens.length][];
        int next = 0;
        for (int s = 0; s < ctxLens.length; s++) {
            tables[s] = new int[(ctxLens[s] + blockSize - 1) / blockSize];
            for (int i = 0; i < tables[s].length; i++) tables[s][i] = free.get(next++);
        }
        return tables;
    }

    /** Fills the cache of one layer for every position of every sequence with these keys and values. */
    static void writeCache(Backend b, KvStorage kv, int layer, int[][] tables, int[] ctxLens, float[][][] keys,
                           float[][][] values) {
        int bs = kv.layout().blockSize();
        for (int s = 0; s < tables.length; s++) {
            int[] slots = new int[ctxLens[s]];
            for (int p = 0; p < ctxLens[s]; p++) slots[p] = tables[s][p / bs] * bs + p % bs;
            b.writeKv(kv, layer, activation(b, keys[s]), activation(b, values[s]), slots);
        }
    }

    /** A layout and per-sequence random keys/values for an attention test. */
    record Attn(KvLayout layout, int heads, int[] qLens, int[] ctxLens, int[][] tables, float[][][] keys,
                float[][][] values, float[][] q) {
        AttentionBatch batch() {
            List<AttentionBatch.Seq> seqs = new ArrayList<>();
            int start = 0;
            for (int s = 0; s < qLens.length; s++) {
                seqs.add(new AttentionBatch.Seq(start, qLens[s], ctxLens[s], tables[s]));
                start += qLens[s];
            }
            return new AttentionBatch(seqs, heads, layout.kvHeads(), layout.headDim(),
                    (float) (1 / Math.sqrt(layout.headDim())));
        }

        static Attn random(Random rnd, int heads, int kvHeads, int headDim, int blockSize, int[] qLens, int[] ctxLens) {
            int blocksNeeded = 0;
            for (int c : ctxLens) blocksNeeded += (c + blockSize - 1) / blockSize;
            KvLayout layout = new KvLayout(2, blocksNeeded + 5, blockSize, kvHeads, headDim);
            int[][] tables = blockTables(rnd, ctxLens, blockSize, layout.numBlocks());
            float[][][] k = new float[ctxLens.length][][], v = new float[ctxLens.length][][];
            int rows = 0;
            for (int s = 0; s < ctxLens.length; s++) {
                k[s] = randomRows(rnd, ctxLens[s], layout.kvDim(), 1f);
                v[s] = randomRows(rnd, ctxLens[s], layout.kvDim(), 1f);
                rows += qLens[s];
            }
            return new Attn(layout, heads, qLens, ctxLens, tables, k, v, randomRows(rnd, rows, heads * headDim, 1f));
        }

        /** Runs the batch on layer 1 of a fresh cache of b. */
        float[][] run(Backend b) {
            KvStorage kv = b.allocateKv(layout);
            writeCache(b, kv, 1, tables, ctxLens, keys, values);
            Activation qa = activation(b, q);
            Activation out = b.allocate(q.length, q[0].length);
            b.attention(qa, kv, 1, batch(), out);
            return read(b, out);
        }
    }
}
