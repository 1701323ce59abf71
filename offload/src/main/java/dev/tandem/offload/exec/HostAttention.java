package dev.tandem.offload.exec;

import dev.tandem.core.backend.cpu.CpuThreadPool;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Causal attention on the CPU over a {@link HostKvCache}: FlexGen's "attention on the CPU" for caches too large to
 * move to the GPU every step. A task is one query row with all its heads; it walks the row's positions in order,
 * reading each position's keys (all KV heads, contiguous) and then values whole, so the scan runs at memory bandwidth
 * rather than at one head's stride. Each row is computed by one thread in a fixed order: results do not depend on the
 * batch or the thread count.
 */
public final class HostAttention {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private static final class Scratch {
        float[] q = new float[0], scores = new float[0], acc = new float[0];
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private HostAttention() {}

    /**
     * out[r] = attention of query row r (heads x headDim f32 at {@code q + qOffset + r * qStride} floats) over positions
     * 0..positions[r] of sequence sequences[r] of {@code cache}'s layer; the row's own key and value must already be in
     * the cache. out rows are contiguous.
     */
    public static void run(CpuThreadPool pool, MemorySegment q, long qOffset, int qStride, HostKvCache cache, int layer, int[] sequences,
                           int[] positions, int heads, int kvHeads, int headDim, float scale, MemorySegment out) {
        int rows = sequences.length, group = heads / kvHeads, qDim = heads * headDim;
        if (cache.kvDim() != kvHeads * headDim) throw new OffloadException("cache kvDim " + cache.kvDim() + " != " + kvHeads + " x " + headDim);
        MemorySegment keys = cache.keys(layer), values = cache.values(layer);
        if (cache.format() == HostKvCache.Format.GQ4) {
            compressed(pool, q, qOffset, qStride, cache, layer, sequences, positions, heads, kvHeads, headDim, scale, out);
            return;
        }
        boolean bf16 = cache.bf16();
        if (bf16 && headDim % (2 * L) == 0) {
            // A decode batch has fewer rows than a big host has cores: a row's KV heads are split across tasks too.
            int parts = Math.clamp(Math.ceilDiv(2 * pool.threads(), Math.max(1, rows)), 1, kvHeads);
            pool.parallelFor(rows * parts, t -> {
                int r = t / parts, part = t % parts, seq = sequences[r], n = positions[r] + 1;
                if (n > cache.capacity()) throw new OffloadException("position " + positions[r] + " beyond the cache's " + cache.capacity());
                int h0 = kvHeads * part / parts * group, h1 = kvHeads * (part + 1) / parts * group;
                Scratch s = SCRATCH.get();
                if (s.q.length < qDim) {
                    s.q = new float[qDim];
                    s.acc = new float[qDim];
                }
                if (s.scores.length < heads * n) s.scores = new float[heads * n];
                MemorySegment.copy(q, ValueLayout.JAVA_FLOAT_UNALIGNED, (qOffset + (long) r * qStride + (long) h0 * headDim) * 4, s.q,
                        h0 * headDim, (h1 - h0) * headDim);
                pairedBf16(s.q, keys, values, cache.offset(seq, 0), cache.slotBytes(), n, h0, h1, group, headDim, scale, s.scores, s.acc);
                MemorySegment.copy(s.acc, h0 * headDim, out, ValueLayout.JAVA_FLOAT_UNALIGNED, ((long) r * qDim + (long) h0 * headDim) * 4,
                        (h1 - h0) * headDim);
            });
            return;
        }
        pool.parallelFor(rows, r -> {
            int seq = sequences[r], n = positions[r] + 1;
            if (n > cache.capacity()) throw new OffloadException("position " + positions[r] + " beyond the cache's " + cache.capacity());
            Scratch s = SCRATCH.get();
            if (s.q.length < qDim) {
                s.q = new float[qDim];
                s.acc = new float[qDim];
            }
            if (s.scores.length < heads * n) s.scores = new float[heads * n];
            float[] qr = s.q, sc = s.scores, acc = s.acc;
            MemorySegment.copy(q, ValueLayout.JAVA_FLOAT_UNALIGNED, (qOffset + (long) r * qStride) * 4, qr, 0, qDim);
            long base = cache.offset(seq, 0), slotBytes = cache.slotBytes();
            for (int p = 0; p < n; p++) {
                long at = base + p * slotBytes;
                for (int h = 0; h < heads; h++) {
                    long ko = at + (long) (h / group) * headDim * (bf16 ? 2 : 4);
                    sc[h * n + p] = dot(qr, h * headDim, keys, ko, headDim, bf16) * scale;
                }
            }
            for (int h = 0; h < heads; h++) softmax(sc, h * n, n);
            java.util.Arrays.fill(acc, 0, qDim, 0f);
            for (int p = 0; p < n; p++) {
                long at = base + p * slotBytes;
                for (int h = 0; h < heads; h++) {
                    long vo = at + (long) (h / group) * headDim * (bf16 ? 2 : 4);
                    axpy(sc[h * n + p], values, vo, acc, h * headDim, headDim, bf16);
                }
            }
            MemorySegment.copy(acc, 0, out, ValueLayout.JAVA_FLOAT_UNALIGNED, (long) r * qDim * 4, qDim);
        });
    }

    /**
     * The bf16 path without widening conversions: an int lane holds two bf16 values, so {@code int << 16} is the even
     * element and {@code int & 0xffff0000} the odd one, each already an f32. q is split into its even and odd elements
     * once per row (a dot product does not care about order); the values' weighted sum is accumulated split the same
     * way and interleaved back at the end. Scores of a head are exponentiated with the vector exp.
     */
    private static void pairedBf16(float[] qr, MemorySegment keys, MemorySegment values, long base, long slotBytes, int n, int h0, int h1,
                                   int group, int hd, float scale, float[] sc, float[] acc) {
        int qDim = h1 * hd;
        float[] qs = PAIRED.get();
        if (qs.length < 2 * qDim) PAIRED.set(qs = new float[2 * qDim]);
        // Per 2L-element chunk of a head: L even elements, then L odd ones.
        for (int c = h0 * hd; c < qDim; c += 2 * L) {
            for (int i = 0; i < L; i++) {
                qs[c + i] = qr[c + 2 * i];
                qs[c + L + i] = qr[c + 2 * i + 1];
            }
        }
        IntVector himask = IntVector.broadcast(I, 0xffff0000);
        for (int p = 0; p < n; p++) {
            long at = base + p * slotBytes;
            for (int h = h0; h < h1; h++) {
                long ko = at + (long) (h / group) * hd * 2;
                FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F);
                for (int i = 0; i < hd; i += 2 * L) {
                    IntVector w = IntVector.fromMemorySegment(I, keys, ko + 2L * i, LE);
                    a0 = FloatVector.fromArray(F, qs, h * hd + i).fma(w.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), a0);
                    a1 = FloatVector.fromArray(F, qs, h * hd + i + L).fma(w.and(himask).reinterpretAsFloats(), a1);
                }
                sc[h * n + p] = a0.add(a1).reduceLanes(VectorOperators.ADD) * scale;
            }
        }
        for (int h = h0; h < h1; h++) vectorSoftmax(sc, h * n, n);
        java.util.Arrays.fill(qs, h0 * hd, qDim, 0f); // now the split accumulator
        for (int p = 0; p < n; p++) {
            long at = base + p * slotBytes;
            for (int h = h0; h < h1; h++) {
                long vo = at + (long) (h / group) * hd * 2;
                FloatVector wv = FloatVector.broadcast(F, sc[h * n + p]);
                for (int i = 0; i < hd; i += 2 * L) {
                    IntVector w = IntVector.fromMemorySegment(I, values, vo + 2L * i, LE);
                    int o = h * hd + i;
                    w.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(wv, FloatVector.fromArray(F, qs, o)).intoArray(qs, o);
                    w.and(himask).reinterpretAsFloats().fma(wv, FloatVector.fromArray(F, qs, o + L)).intoArray(qs, o + L);
                }
            }
        }
        for (int c = h0 * hd; c < qDim; c += 2 * L) {
            for (int i = 0; i < L; i++) {
                acc[c + 2 * i] = qs[c + i];
                acc[c + 2 * i + 1] = qs[c + L + i];
            }
        }
    }

    private static final ThreadLocal<float[]> PAIRED = ThreadLocal.withInitial(() -> new float[0]);

    private static void vectorSoftmax(float[] x, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, x[off + i]);
        FloatVector m = FloatVector.broadcast(F, max);
        FloatVector s = FloatVector.zero(F);
        int i = 0, vec = n - n % L;
        for (; i < vec; i += L) {
            FloatVector e = FloatVector.fromArray(F, x, off + i).sub(m).lanewise(VectorOperators.EXP);
            e.intoArray(x, off + i);
            s = s.add(e);
        }
        float sum = s.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            float e = (float) Math.exp(x[off + i] - max);
            x[off + i] = e;
            sum += e;
        }
        float inv = 1f / sum;
        for (int j = 0; j < n; j++) x[off + j] *= inv;
    }

    /**
     * Attention over a GQ4 cache: each position's keys, then values, are decompressed (all heads at once) into f32
     * scratch and used as the f32 path uses them. The cache is read at 0.28 of bf16's bytes; the decompression is the
     * price.
     */
    private static void compressed(CpuThreadPool pool, MemorySegment q, long qOffset, int qStride, HostKvCache cache, int layer,
                                   int[] sequences, int[] positions, int heads, int kvHeads, int headDim, float scale, MemorySegment out) {
        int group = heads / kvHeads, qDim = heads * headDim, kvDim = kvHeads * headDim;
        dev.tandem.core.quant.Gq4Layout slot = HostKvCache.slotLayout(1, kvHeads, headDim);
        MemorySegment keys = cache.keys(layer), values = cache.values(layer);
        pool.parallelFor(sequences.length, r -> {
            int seq = sequences[r], n = positions[r] + 1;
            Scratch s = SCRATCH.get();
            if (s.q.length < qDim) {
                s.q = new float[qDim];
                s.acc = new float[qDim];
            }
            if (s.scores.length < heads * n) s.scores = new float[heads * n];
            float[] qr = s.q, sc = s.scores, acc = s.acc, row = ROW.get();
            if (row.length < kvDim) ROW.set(row = new float[kvDim]);
            MemorySegment rowSeg = MemorySegment.ofArray(row);
            MemorySegment.copy(q, ValueLayout.JAVA_FLOAT_UNALIGNED, (qOffset + (long) r * qStride) * 4, qr, 0, qDim);
            for (int p = 0; p < n; p++) {
                dev.tandem.core.quant.GroupQuant4.dequantizeRows(keys, cache.offset(seq, p), slot, 0, kvHeads, rowSeg, 0,
                        dev.tandem.core.tensor.DType.F32);
                for (int h = 0; h < heads; h++) sc[h * n + p] = dotArrays(qr, h * headDim, row, (h / group) * headDim, headDim) * scale;
            }
            for (int h = 0; h < heads; h++) vectorSoftmax(sc, h * n, n);
            java.util.Arrays.fill(acc, 0, qDim, 0f);
            for (int p = 0; p < n; p++) {
                dev.tandem.core.quant.GroupQuant4.dequantizeRows(values, cache.offset(seq, p), slot, 0, kvHeads, rowSeg, 0,
                        dev.tandem.core.tensor.DType.F32);
                for (int h = 0; h < heads; h++) axpyArrays(sc[h * n + p], row, (h / group) * headDim, acc, h * headDim, headDim);
            }
            MemorySegment.copy(acc, 0, out, ValueLayout.JAVA_FLOAT_UNALIGNED, (long) r * qDim * 4, qDim);
        });
    }

    private static final ThreadLocal<float[]> ROW = ThreadLocal.withInitial(() -> new float[0]);

    private static float dotArrays(float[] a, int ao, float[] b, int bo, int n) {
        FloatVector s = FloatVector.zero(F);
        int i = 0, vec = n - n % L;
        for (; i < vec; i += L) s = FloatVector.fromArray(F, a, ao + i).fma(FloatVector.fromArray(F, b, bo + i), s);
        float sum = s.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) sum += a[ao + i] * b[bo + i];
        return sum;
    }

    private static void axpyArrays(float w, float[] x, int xo, float[] acc, int ao, int n) {
        FloatVector wv = FloatVector.broadcast(F, w);
        int i = 0, vec = n - n % L;
        for (; i < vec; i += L) FloatVector.fromArray(F, x, xo + i).fma(wv, FloatVector.fromArray(F, acc, ao + i)).intoArray(acc, ao + i);
        for (; i < n; i++) acc[ao + i] += w * x[xo + i];
    }

    private static FloatVector load(MemorySegment m, long off, boolean bf16) {
        if (!bf16) return FloatVector.fromMemorySegment(F, m, off, LE);
        // bf16 is the top half of an f32: widen the shorts to ints and shift them up.
        IntVector i = (IntVector) ShortVector.fromMemorySegment(S, m, off, LE).convertShape(VectorOperators.S2I, I, 0);
        return i.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    private static float dot(float[] q, int qo, MemorySegment k, long ko, int hd, boolean bf16) {
        FloatVector a = FloatVector.zero(F);
        int eb = bf16 ? 2 : 4, i = 0, vec = hd - hd % L;
        for (; i < vec; i += L) a = FloatVector.fromArray(F, q, qo + i).fma(load(k, ko + (long) i * eb, bf16), a);
        float s = a.reduceLanes(VectorOperators.ADD);
        for (; i < hd; i++) s += q[qo + i] * scalar(k, ko + (long) i * eb, bf16);
        return s;
    }

    private static void axpy(float w, MemorySegment v, long vo, float[] acc, int ao, int hd, boolean bf16) {
        int eb = bf16 ? 2 : 4, i = 0, vec = hd - hd % L;
        FloatVector wv = FloatVector.broadcast(F, w);
        for (; i < vec; i += L) {
            load(v, vo + (long) i * eb, bf16).fma(wv, FloatVector.fromArray(F, acc, ao + i)).intoArray(acc, ao + i);
        }
        for (; i < hd; i++) acc[ao + i] += w * scalar(v, vo + (long) i * eb, bf16);
    }

    private static float scalar(MemorySegment m, long off, boolean bf16) {
        return bf16 ? Float.intBitsToFloat((m.get(ValueLayout.JAVA_SHORT_UNALIGNED, off) & 0xffff) << 16)
                : m.get(ValueLayout.JAVA_FLOAT_UNALIGNED, off);
    }

    private static void softmax(float[] x, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, x[off + i]);
        float sum = 0;
        for (int i = 0; i < n; i++) {
            float e = (float) Math.exp(x[off + i] - max);
            x[off + i] = e;
            sum += e;
        }
        float inv = 1f / sum;
        for (int i = 0; i < n; i++) x[off + i] *= inv;
    }
}
