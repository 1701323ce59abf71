package dev.tandem.core.backend.cpu;

import dev.tandem.core.backend.AttentionBatch;
import dev.tandem.core.quant.GroupQuant4;
import dev.tandem.core.quant.Gq4Layout;
import dev.tandem.core.tensor.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;

/**
 * Causal attention over the paged KV cache: per query row and head, scores q.k over the positions up to the
 * row's own, a max-subtracted softmax, and the weighted sum of values.
 *
 * <p>A row's positions are cut into chunks of {@link #CHUNK}; a task is one (row, chunk) for all heads, and
 * walks its positions in order reading each slot whole (a slot keeps all heads of a token together): reading
 * one head's slice per slot, one per 4 KiB page, defeated the hardware prefetcher and ran at a third of the
 * bandwidth. Chunks also spread a single decode row over the threads. Each chunk yields, per head, its max
 * score m, its sum of e^(score - m) and its unnormalised weighted values; a second pass combines the chunks in
 * order (flash-decoding). The chunking depends only on the row's position and every step has a fixed order,
 * so a row's result is the same alone or in any batch, on any number of threads.
 */
final class CpuAttention {
    /** Positions per task. Fixed, not derived from threads or batch: results must not depend on them. */
    static final int CHUNK = 64;
    /** Bound on the partial results held at once (16 MiB); tests lower it to exercise several passes. */
    static int partFloats = 1 << 22;
    private static final VectorSpecies<Float> F = MatmulKernel.F;
    private static final int L = F.length();
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private static final class Scratch {
        float[] q = new float[0];
        float[] scores = new float[0];
        float[] part = new float[0];
        /**
         * A GQ4 cache's chunk of keys and values decompressed to f32, and the slots of that copy: native memory, as
         * the f32 kernels read native segments faster than heap ones. Small (2 x 64 slots), one per thread for the
         * thread's life, hence an automatic arena.
         */
        MemorySegment keys = MemorySegment.NULL, values = MemorySegment.NULL;
        long[] slots = new long[0];
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private CpuAttention() {}

    static void run(CpuThreadPool pool, CpuActivation q, CpuKvStorage kv, int layer, AttentionBatch batch,
                    CpuActivation out) {
        int hd = batch.headDim(), kvHeads = batch.kvHeads(), heads = batch.heads();
        if (heads % kvHeads != 0 || kv.layout().kvHeads() != kvHeads || kv.layout().headDim() != hd
                || q.cols() != heads * hd || out.cols() != q.cols()) {
            throw new IllegalArgumentException("attention shapes do not match the batch / cache layout");
        }
        List<AttentionBatch.Seq> seqs = batch.seqs();
        int rows = 0;
        for (AttentionBatch.Seq s : seqs) rows += s.qLen();
        // Per row: its sequence, its index in the sequence, and its first chunk.
        int[] seqOf = new int[rows], rowIdx = new int[rows], firstChunk = new int[rows + 1];
        long[][] slots = new long[seqs.size()][];
        int bs = kv.layout().blockSize(), r = 0;
        for (int si = 0; si < seqs.size(); si++) {
            AttentionBatch.Seq s = seqs.get(si);
            slots[si] = slotOffsets(kv, s, bs);
            for (int i = 0; i < s.qLen(); i++, r++) {
                seqOf[r] = si;
                rowIdx[r] = i;
                int n = s.ctxLen() - s.qLen() + i + 1;
                firstChunk[r + 1] = firstChunk[r] + (n + CHUNK - 1) / CHUNK;
            }
        }
        int hdPad = (hd + L - 1) / L * L, stride = heads * (hdPad + 2);
        // Rows go in passes whose partial results fit partFloats (a long prefill has a chunk per 64 positions
        // per row); a row's result does not depend on the pass it is in.
        Scratch mine = SCRATCH.get();
        for (int r0 = 0; r0 < rows; ) {
            int r1 = r0 + 1;
            while (r1 < rows && (long) (firstChunk[r1 + 1] - firstChunk[r0]) * stride <= partFloats) r1++;
            int c0 = firstChunk[r0], chunks = firstChunk[r1] - c0, ra = r0, rb = r1;
            if (mine.part.length < chunks * stride) mine.part = new float[chunks * stride];
            float[] part = mine.part; // per chunk and head: [max, sum, hdPad unnormalised values]
            int[] chunkRow = new int[chunks];
            for (int i = ra; i < rb; i++) Arrays.fill(chunkRow, firstChunk[i] - c0, firstChunk[i + 1] - c0, i);
            pool.parallelFor(chunks, c -> {
                int row = chunkRow[c];
                chunk(q, kv, layer, batch, seqs.get(seqOf[row]), slots[seqOf[row]], rowIdx[row], c + c0 - firstChunk[row],
                        part, c * stride);
            });
            int perTask = Math.max(1, (rb - ra) / (4 * pool.threads()));
            pool.parallelFor((rb - ra + perTask - 1) / perTask, t -> {
                for (int row = ra + t * perTask; row < Math.min(rb, ra + (t + 1) * perTask); row++) {
                    combine(part, firstChunk[row] - c0, firstChunk[row + 1] - c0, stride, heads, hd, hdPad, out,
                            seqs.get(seqOf[row]).qStart() + rowIdx[row]);
                }
            });
            r0 = r1;
        }
    }

    /** Byte offset of every position's slot (KV head 0). */
    private static long[] slotOffsets(CpuKvStorage kv, AttentionBatch.Seq s, int bs) {
        int[] table = s.blockTable();
        if ((long) table.length * bs < s.ctxLen()) throw new IllegalArgumentException("block table too short for context " + s.ctxLen());
        long[] sl = new long[s.ctxLen()];
        for (int p = 0; p < s.ctxLen(); p++) {
            long slot = (long) table[p / bs] * bs + p % bs;
            if (slot < 0 || slot >= kv.layout().slots()) throw new IllegalArgumentException("slot " + slot + " outside the cache");
            sl[p] = kv.offset(slot, 0);
        }
        return sl;
    }

    /** Query row i of seq, chunk ci of its positions, every head: writes [max, sum, values] per head at part[off]. */
    private static void chunk(CpuActivation q, CpuKvStorage kv, int layer, AttentionBatch batch, AttentionBatch.Seq seq,
                              long[] slots, int i, int ci, float[] part, int off) {
        int hd = batch.headDim(), nh = batch.heads();
        int row = seq.qStart() + i, n = seq.ctxLen() - seq.qLen() + i + 1;
        int p0 = ci * CHUNK, len = Math.min(CHUNK, n - p0);
        int hdPad = (hd + L - 1) / L * L, lenPad = (len + L - 1) / L * L;
        Scratch s = SCRATCH.get();
        if (s.q.length < nh * hdPad) s.q = new float[nh * hdPad];
        if (s.scores.length < nh * lenPad) s.scores = new float[nh * lenPad];
        float[] qv = s.q, sc = s.scores;
        for (int h = 0; h < nh; h++) {
            MemorySegment.copy(q.segment(), ValueLayout.JAVA_FLOAT, q.offset(row, h * hd), qv, h * hdPad, hd);
            Arrays.fill(qv, h * hdPad + hd, (h + 1) * hdPad, 0f);
        }
        MemorySegment keys = kv.keys(layer), values = kv.values(layer);
        if (kv.compressed()) {
            // The chunk's keys and values decompressed to f32 once for all heads; then the f32 path runs on the copy.
            decompress(kv, layer, slots, p0, len, s);
            keys = s.keys;
            values = s.values;
            slots = s.slots;
            p0 = 0;
        }
        scores(qv, nh, batch.groupSize(), hd, hdPad, keys, slots, p0, len, batch.scale(), sc, lenPad);
        int stride = hdPad + 2;
        for (int h = 0; h < nh; h++) softmax(sc, h * lenPad, len, part, off + h * stride);
        weightedValues(sc, lenPad, len, nh, batch.groupSize(), hd, hdPad, values, slots, p0, part, off);
    }

    /** Positions [p0, p0 + len) of a GQ4 cache into s.keys / s.values as f32 slots of kvDim, s.slots their offsets. */
    private static void decompress(CpuKvStorage kv, int layer, long[] slots, int p0, int len, Scratch s) {
        Gq4Layout slot = kv.layout().slotLayout();
        int kvDim = kv.layout().kvDim(), heads = kv.layout().kvHeads();
        long bytes = (long) CHUNK * kvDim * Float.BYTES;
        if (s.keys.byteSize() < bytes) {
            s.keys = Arena.ofAuto().allocate(bytes + CpuKvStorage.SLACK, 64);
            s.values = Arena.ofAuto().allocate(bytes + CpuKvStorage.SLACK, 64);
            s.slots = new long[CHUNK];
        }
        MemorySegment k = s.keys, v = s.values;
        for (int j = 0; j < len; j++) {
            long dst = (long) j * kvDim * Float.BYTES;
            GroupQuant4.dequantizeRows(kv.keys(layer), slots[p0 + j], slot, 0, heads, k, dst, DType.F32);
            GroupQuant4.dequantizeRows(kv.values(layer), slots[p0 + j], slot, 0, heads, v, dst, DType.F32);
            s.slots[j] = dst;
        }
    }

    /** out = sum_c e^(m_c - M) o_c / sum_c e^(m_c - M) s_c over the row's chunks in order, M = max m_c. */
    private static void combine(float[] part, int c0, int c1, int stride, int nh, int hd, int hdPad, CpuActivation out, int row) {
        int hs = hdPad + 2;
        float[] w = new float[c1 - c0];
        for (int h = 0; h < nh; h++) {
            float max = Float.NEGATIVE_INFINITY;
            for (int c = c0; c < c1; c++) max = Math.max(max, part[c * stride + h * hs]);
            float total = 0;
            for (int c = c0; c < c1; c++) {
                int b = c * stride + h * hs;
                w[c - c0] = (float) StrictMath.exp(part[b] - max); // StrictMath: the same bits on every JIT tier
                total += w[c - c0] * part[b + 1];
            }
            long o = out.offset(row, h * hd);
            for (int d = 0; d < hd; d++) {
                float v = 0;
                for (int c = c0; c < c1; c++) v += w[c - c0] * part[c * stride + h * hs + 2 + d];
                out.segment().set(ValueLayout.JAVA_FLOAT, o + 4L * d, v / total);
            }
        }
    }

    // The phases are separate methods to keep each small: C1 cannot compile large Vector API methods.

    /**
     * sc[h * lenPad + j] = scale * q_h . k_(p0 + j) for j < len and all heads. Per (head, position): an FMA chain
     * over head_dim's vectors, then the lanes summed as the pairwise tree of {@link VectorMath#sum}, written out
     * here so that it is compiled inline. head_dim of up to 8 whole vectors (the usual 64 or 128) takes a path
     * without an inner loop, whose set-up per dot product cost more than the dot product.
     */
    static void scores(float[] qv, int nh, int group, int hd, int hdPad, MemorySegment keys, long[] slots, int p0,
                       int len, float scale, float[] sc, int lenPad) {
        if (hd % L == 0 && hd <= 8 * L) {
            scoresShort(qv, nh, group, hd, keys, slots, p0, len, scale, sc, lenPad);
            return;
        }
        int full = hd - hd % L;
        VectorMask<Float> drop = F.indexInRange(full, hd).not();
        for (int j = 0; j < len; j++) {
            long ko = slots[p0 + j] - 4L * hd;
            for (int h = 0, gi = 0; h < nh; h++, gi = gi + 1 == group ? 0 : gi + 1) {
                if (gi == 0) ko += 4L * hd; // the next KV head (counting avoids a division per head)
                int qo = h * hdPad;
                FloatVector a = FloatVector.zero(F);
                for (int d = 0; d < full; d += L) {
                    a = FloatVector.fromArray(F, qv, qo + d).fma(FloatVector.fromMemorySegment(F, keys, ko + 4L * d, LE), a);
                }
                if (full < hd) { // a whole-vector load, as in weightedValuesShort: a masked one is far slower
                    a = FloatVector.fromArray(F, qv, qo + full).fma(FloatVector.fromMemorySegment(F, keys, ko + 4L * full, LE).blend(0f, drop), a);
                }
                a = a.add(a.rearrange(VectorMath.SWAP1));
                a = a.add(a.rearrange(VectorMath.SWAP2));
                a = a.add(a.rearrange(VectorMath.SWAP4));
                if (L == 16) a = a.add(a.rearrange(VectorMath.SWAP8));
                sc[h * lenPad + j] = a.lane(0) * scale;
            }
        }
    }

    /** {@link #scores} for head_dim = K whole vectors, K <= 8: the same operations, the chunk loop unrolled. */
    private static void scoresShort(float[] qv, int nh, int group, int hd, MemorySegment keys, long[] slots, int p0,
                                    int len, float scale, float[] sc, int lenPad) {
        int K = hd / L;
        for (int j = 0; j < len; j++) {
            long ko = slots[p0 + j] - 4L * hd;
            for (int h = 0, gi = 0; h < nh; h++, gi = gi + 1 == group ? 0 : gi + 1) {
                if (gi == 0) ko += 4L * hd;
                int qo = h * hd;
                FloatVector a = FloatVector.fromArray(F, qv, qo).fma(FloatVector.fromMemorySegment(F, keys, ko, LE), FloatVector.zero(F));
                if (K > 1) a = FloatVector.fromArray(F, qv, qo + L).fma(FloatVector.fromMemorySegment(F, keys, ko + 4L * L, LE), a);
                if (K > 2) a = FloatVector.fromArray(F, qv, qo + 2 * L).fma(FloatVector.fromMemorySegment(F, keys, ko + 8L * L, LE), a);
                if (K > 3) a = FloatVector.fromArray(F, qv, qo + 3 * L).fma(FloatVector.fromMemorySegment(F, keys, ko + 12L * L, LE), a);
                if (K > 4) a = FloatVector.fromArray(F, qv, qo + 4 * L).fma(FloatVector.fromMemorySegment(F, keys, ko + 16L * L, LE), a);
                if (K > 5) a = FloatVector.fromArray(F, qv, qo + 5 * L).fma(FloatVector.fromMemorySegment(F, keys, ko + 20L * L, LE), a);
                if (K > 6) a = FloatVector.fromArray(F, qv, qo + 6 * L).fma(FloatVector.fromMemorySegment(F, keys, ko + 24L * L, LE), a);
                if (K > 7) a = FloatVector.fromArray(F, qv, qo + 7 * L).fma(FloatVector.fromMemorySegment(F, keys, ko + 28L * L, LE), a);
                a = a.add(a.rearrange(VectorMath.SWAP1));
                a = a.add(a.rearrange(VectorMath.SWAP2));
                a = a.add(a.rearrange(VectorMath.SWAP4));
                if (L == 16) a = a.add(a.rearrange(VectorMath.SWAP8));
                sc[h * lenPad + j] = a.lane(0) * scale;
            }
        }
    }

    /**
     * Replaces sc[off, off + n) by e^(sc - max) and zeroes it up to the next whole vector; stores the max and
     * the sum (lane sums in a fixed order, then the fixed lane tree) at part[pOff] and part[pOff + 1].
     */
    static void softmax(float[] sc, int off, int n, float[] part, int pOff) {
        int full = n - n % L;
        VectorMask<Float> tail = F.indexInRange(full, n);
        FloatVector m = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        for (int p = 0; p < full; p += L) m = m.max(FloatVector.fromArray(F, sc, off + p));
        if (full < n) m = m.max(FloatVector.fromArray(F, sc, off + full, tail).blend(Float.NEGATIVE_INFINITY, tail.not()));
        float max = Float.NEGATIVE_INFINITY;
        for (int l = 0; l < L; l++) max = Math.max(max, m.lane(l));
        FloatVector mx = FloatVector.broadcast(F, max);
        FloatVector sum = FloatVector.zero(F);
        for (int p = 0; p < full; p += L) {
            FloatVector e = VectorMath.exp(FloatVector.fromArray(F, sc, off + p).sub(mx));
            e.intoArray(sc, off + p);
            sum = sum.add(e);
        }
        if (full < n) {
            FloatVector e = VectorMath.exp(FloatVector.fromArray(F, sc, off + full).sub(mx)).blend(0f, tail.not());
            e.intoArray(sc, off + full);
            sum = sum.add(e);
        }
        part[pOff] = max;
        part[pOff + 1] = VectorMath.sum(sum);
    }

    /**
     * part[off + h * (hdPad + 2) + 2 + d] = sum_j sc[h * lenPad + j] v_(p0 + j)[d], positions in order: one FMA
     * chain per element (heads and head_dim vectors give the instruction-level parallelism). As in
     * {@link #scores}, head_dim of up to 8 whole vectors skips the inner loop.
     */
    static void weightedValues(float[] sc, int lenPad, int len, int nh, int group, int hd, int hdPad,
                               MemorySegment values, long[] slots, int p0, float[] part, int off) {
        if (hdPad <= 4 * L) {
            weightedValuesShort(sc, lenPad, len, nh, group, hd, hdPad, values, slots, p0, part, off);
            return;
        }
        int hs = hdPad + 2;
        for (int h = 0; h < nh; h++) Arrays.fill(part, off + h * hs + 2, off + (h + 1) * hs, 0f);
        boolean aligned = hd % L == 0 && hd <= 8 * L;
        int K = hd / L, full = hd - hd % L;
        VectorMask<Float> drop = F.indexInRange(full, hd).not();
        for (int j = 0; j < len; j++) {
            long vo = slots[p0 + j] - 4L * hd;
            for (int h = 0, gi = 0; h < nh; h++, gi = gi + 1 == group ? 0 : gi + 1) {
                if (gi == 0) vo += 4L * hd;
                FloatVector w = FloatVector.broadcast(F, sc[h * lenPad + j]);
                int a = off + h * hs + 2;
                if (aligned) {
                    FloatVector.fromMemorySegment(F, values, vo, LE).fma(w, FloatVector.fromArray(F, part, a)).intoArray(part, a);
                    if (K > 1) FloatVector.fromMemorySegment(F, values, vo + 4L * L, LE).fma(w, FloatVector.fromArray(F, part, a + L)).intoArray(part, a + L);
                    if (K > 2) FloatVector.fromMemorySegment(F, values, vo + 8L * L, LE).fma(w, FloatVector.fromArray(F, part, a + 2 * L)).intoArray(part, a + 2 * L);
                    if (K > 3) FloatVector.fromMemorySegment(F, values, vo + 12L * L, LE).fma(w, FloatVector.fromArray(F, part, a + 3 * L)).intoArray(part, a + 3 * L);
                    if (K > 4) FloatVector.fromMemorySegment(F, values, vo + 16L * L, LE).fma(w, FloatVector.fromArray(F, part, a + 4 * L)).intoArray(part, a + 4 * L);
                    if (K > 5) FloatVector.fromMemorySegment(F, values, vo + 20L * L, LE).fma(w, FloatVector.fromArray(F, part, a + 5 * L)).intoArray(part, a + 5 * L);
                    if (K > 6) FloatVector.fromMemorySegment(F, values, vo + 24L * L, LE).fma(w, FloatVector.fromArray(F, part, a + 6 * L)).intoArray(part, a + 6 * L);
                    if (K > 7) FloatVector.fromMemorySegment(F, values, vo + 28L * L, LE).fma(w, FloatVector.fromArray(F, part, a + 7 * L)).intoArray(part, a + 7 * L);
                } else {
                    for (int d = 0; d < full; d += L) {
                        FloatVector v = FloatVector.fromMemorySegment(F, values, vo + 4L * d, LE);
                        v.fma(w, FloatVector.fromArray(F, part, a + d)).intoArray(part, a + d);
                    }
                    if (full < hd) {
                        FloatVector v = FloatVector.fromMemorySegment(F, values, vo + 4L * full, LE).blend(0f, drop);
                        v.fma(w, FloatVector.fromArray(F, part, a + full)).intoArray(part, a + full);
                    }
                }
            }
        }
    }

    /**
     * {@link #weightedValues} for head_dim of up to 4 vectors: head by head, the FMA chains of each element over the
     * positions in order held in registers (the same operations from the same zero), not read from and written back
     * to part at every position.
     */
    private static void weightedValuesShort(float[] sc, int lenPad, int len, int nh, int group, int hd, int hdPad,
                                            MemorySegment values, long[] slots, int p0, float[] part, int off) {
        int hs = hdPad + 2, nv = hdPad / L;
        // Whole-vector loads (the cache has a vector of slack at its end), the last vector's lanes past head_dim
        // replaced by zeros, as a masked load would give: masked loads from a segment are not intrinsified here.
        VectorMask<Float> drop = F.indexInRange((nv - 1) * L, hd).not();
        for (int h = 0; h < nh; h++) {
            long ho = 4L * hd * (h / group);
            int so = h * lenPad;
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
            for (int j = 0; j < len; j++) {
                FloatVector w = FloatVector.broadcast(F, sc[so + j]);
                long vo = slots[p0 + j] + ho;
                if (nv == 1) {
                    a0 = FloatVector.fromMemorySegment(F, values, vo, LE).blend(0f, drop).fma(w, a0);
                    continue;
                }
                a0 = FloatVector.fromMemorySegment(F, values, vo, LE).fma(w, a0);
                if (nv == 2) {
                    a1 = FloatVector.fromMemorySegment(F, values, vo + 4L * L, LE).blend(0f, drop).fma(w, a1);
                    continue;
                }
                a1 = FloatVector.fromMemorySegment(F, values, vo + 4L * L, LE).fma(w, a1);
                if (nv == 3) {
                    a2 = FloatVector.fromMemorySegment(F, values, vo + 8L * L, LE).blend(0f, drop).fma(w, a2);
                    continue;
                }
                a2 = FloatVector.fromMemorySegment(F, values, vo + 8L * L, LE).fma(w, a2);
                a3 = FloatVector.fromMemorySegment(F, values, vo + 12L * L, LE).blend(0f, drop).fma(w, a3);
            }
            int a = off + h * hs + 2;
            a0.intoArray(part, a);
            if (nv > 1) a1.intoArray(part, a + L);
            if (nv > 2) a2.intoArray(part, a + 2 * L);
            if (nv > 3) a3.intoArray(part, a + 3 * L);
        }
    }
}
