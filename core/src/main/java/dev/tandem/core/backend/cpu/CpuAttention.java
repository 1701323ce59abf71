package dev.tandem.core.backend.cpu;

import dev.tandem.core.backend.AttentionBatch;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Causal attention over the paged KV cache. One task per (query row, KV head), computing the query heads of
 * that KV head's group: scores q.k over positions up to the row's own, a max-subtracted softmax, and the
 * weighted sum of values. A task reads only its own row and its sequence's cache, in an order fixed by the
 * row's position and head_dim, so a row's result does not depend on the rest of the batch or on threads.
 */
final class CpuAttention {
    private static final VectorSpecies<Float> F = MatmulKernel.F;
    private static final int L = F.length();
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private static final class Scratch {
        float[] q = new float[0];
        float[] scores = new float[0];
        long[] slots = new long[0];
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private CpuAttention() {}

    static void run(CpuThreadPool pool, CpuActivation q, CpuKvStorage kv, int layer, AttentionBatch batch,
                    CpuActivation out) {
        int hd = batch.headDim(), kvHeads = batch.kvHeads();
        if (batch.heads() % kvHeads != 0 || kv.layout().kvHeads() != kvHeads || kv.layout().headDim() != hd
                || q.cols() != batch.heads() * hd || out.cols() != q.cols()) {
            throw new IllegalArgumentException("attention shapes do not match the batch / cache layout");
        }
        int rows = 0;
        for (AttentionBatch.Seq s : batch.seqs()) rows += s.qLen();
        int[] seqOf = new int[rows], rowIdx = new int[rows];
        int k = 0;
        for (int si = 0; si < batch.seqs().size(); si++) {
            for (int i = 0; i < batch.seqs().get(si).qLen(); i++) {
                seqOf[k] = si;
                rowIdx[k++] = i;
            }
        }
        pool.parallelFor(rows * kvHeads, t -> {
            int r = t / kvHeads;
            task(q, kv, layer, batch, batch.seqs().get(seqOf[r]), rowIdx[r], t % kvHeads, out);
        });
    }

    private static void task(CpuActivation q, CpuKvStorage kv, int layer, AttentionBatch batch, AttentionBatch.Seq seq,
                             int i, int kvh, CpuActivation out) {
        int hd = batch.headDim(), group = batch.groupSize(), bs = kv.layout().blockSize();
        int row = seq.qStart() + i, pos = seq.ctxLen() - seq.qLen() + i, n = pos + 1;
        int hdPad = (hd + L - 1) / L * L, nPad = (n + L - 1) / L * L;
        Scratch s = SCRATCH.get();
        if (s.q.length < hdPad) s.q = new float[hdPad];
        if (s.scores.length < nPad) s.scores = new float[nPad];
        if (s.slots.length < nPad) s.slots = new long[Math.max(nPad, 64)];
        float[] qv = s.q, sc = s.scores;
        long[] slots = s.slots;
        int[] table = seq.blockTable();
        for (int p = 0; p < n; p++) slots[p] = kv.offset((long) table[p / bs] * bs + p % bs, kvh);
        // Padding up to a multiple of 4 positions: weight 0 (softmax zeroes sc past n), any valid slot.
        for (int p = n; p < (n + 3) / 4 * 4; p++) slots[p] = slots[0];
        MemorySegment keys = kv.keys(layer), values = kv.values(layer);
        MemorySegment qs = q.segment(), os = out.segment();
        float scale = batch.scale();
        for (int h = kvh * group; h < (kvh + 1) * group; h++) {
            MemorySegment.copy(qs, ValueLayout.JAVA_FLOAT, q.offset(row, h * hd), qv, 0, hd);
            Arrays.fill(qv, hd, hdPad, 0f);
            float max = scores(qv, hd, keys, slots, n, scale, sc);
            float total = softmax(sc, n, max);
            weightedValues(sc, n, total, values, slots, hd, os, out.offset(row, h * hd));
        }
    }

    // The phases are separate methods to keep each small: C1 cannot compile large Vector API methods.

    /** sc[p] = scale * q.k_p for p < n; returns the max. Per position: FMA chain over head_dim, fixed lane tree. */
    private static float scores(float[] qv, int hd, MemorySegment keys, long[] slots, int n, float scale, float[] sc) {
        int full = hd - hd % L;
        VectorMask<Float> tail = F.indexInRange(full, hd);
        float max = Float.NEGATIVE_INFINITY;
        for (int p = 0; p < n; p++) {
            long ko = slots[p];
            FloatVector acc = FloatVector.zero(F);
            for (int d = 0; d < full; d += L) {
                acc = FloatVector.fromArray(F, qv, d).fma(FloatVector.fromMemorySegment(F, keys, ko + 4L * d, LE), acc);
            }
            if (full < hd) {
                acc = FloatVector.fromArray(F, qv, full).fma(FloatVector.fromMemorySegment(F, keys, ko + 4L * full, LE, tail), acc);
            }
            float v = VectorMath.sum(acc) * scale;
            sc[p] = v;
            max = Math.max(max, v);
        }
        return max;
    }

    /** sc[p] = e^(sc[p] - max) for p < n (sc has room for a whole last vector); returns their sum. */
    private static float softmax(float[] sc, int n, float max) {
        FloatVector sum = FloatVector.zero(F);
        FloatVector mx = FloatVector.broadcast(F, max);
        int full = n - n % L;
        for (int p = 0; p < full; p += L) {
            FloatVector e = VectorMath.exp(FloatVector.fromArray(F, sc, p).sub(mx));
            e.intoArray(sc, p);
            sum = sum.add(e);
        }
        if (full < n) {
            VectorMask<Float> m = F.indexInRange(full, n);
            FloatVector e = VectorMath.exp(FloatVector.fromArray(F, sc, full).sub(mx)).blend(0f, m.not());
            e.intoArray(sc, full);
            sum = sum.add(e);
        }
        return VectorMath.sum(sum);
    }

    /**
     * out[d] = sum_p sc[p] v_p[d] / total, a vector of head_dim at a time. Positions go round-robin into four
     * chains (for instruction-level parallelism), combined as (c0 + c1) + (c2 + c3): a fixed order. Positions are
     * padded to a multiple of 4 with weight 0, which leaves the chains' values unchanged.
     */
    private static void weightedValues(float[] sc, int n, float total, MemorySegment values, long[] slots, int hd,
                                       MemorySegment out, long outOff) {
        for (int d = 0; d < hd; d += L) {
            VectorMask<Float> m = F.indexInRange(d, hd);
            FloatVector c0 = FloatVector.zero(F), c1 = c0, c2 = c0, c3 = c0;
            for (int p = 0; p < n; p += 4) {
                c0 = FloatVector.fromMemorySegment(F, values, slots[p] + 4L * d, LE, m).fma(FloatVector.broadcast(F, sc[p]), c0);
                c1 = FloatVector.fromMemorySegment(F, values, slots[p + 1] + 4L * d, LE, m).fma(FloatVector.broadcast(F, sc[p + 1]), c1);
                c2 = FloatVector.fromMemorySegment(F, values, slots[p + 2] + 4L * d, LE, m).fma(FloatVector.broadcast(F, sc[p + 2]), c2);
                c3 = FloatVector.fromMemorySegment(F, values, slots[p + 3] + 4L * d, LE, m).fma(FloatVector.broadcast(F, sc[p + 3]), c3);
            }
            c0.add(c1).add(c2.add(c3)).div(total).intoMemorySegment(out, outOff + 4L * d, LE, m);
        }
    }
}
