package dev.tandem.core.backend.cpu;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.AttentionBatch;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.Rope;
import dev.tandem.core.backend.TensorWeight;
import dev.tandem.core.backend.Weight;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.tandem.core.backend.cpu.MatVec.F;
import static dev.tandem.core.backend.cpu.MatVec.L;
import static dev.tandem.core.backend.cpu.MatVec.NATIVE;

/**
 * The CPU backend: Vector API kernels over weights kept in their stored format (memory-mapped, never copied),
 * f32 activations and KV cache in native memory, and a persistent thread pool. Prompt chunks are
 * matrix-matrix products (each weight row is dequantized once per group of four tokens and stays in cache for
 * a block of tokens); decode is matrix-vector. Every op gives a token the same bits whatever else is in the
 * batch (see {@link MatVec}).
 */
public final class CpuBackend implements Backend {
    private static final ValueLayout.OfFloat X = ValueLayout.JAVA_FLOAT_UNALIGNED;
    /** Tokens per cache block in matmul: 64 rows of activations stay in L2 while weight rows stream past. */
    private static final int TOKEN_BLOCK = 64;

    private final Arena arena = Arena.ofShared();
    private final CpuThreadPool pool;
    private final ThreadLocal<float[]> scratch = ThreadLocal.withInitial(() -> new float[4096]);

    public CpuBackend(int threads) { this.pool = new CpuThreadPool(threads); }

    @Override
    public String name() { return "cpu"; }

    public int threads() { return pool.threads(); }

    @Override
    public Weight upload(Tensor tensor) { return new TensorWeight(tensor); }

    @Override
    public CpuActivation allocate(int rows, int cols) {
        return new CpuActivation(arena.allocate((long) rows * cols * Float.BYTES, 64), rows, cols);
    }

    @Override
    public KvStorage allocateKv(KvLayout layout) { return new CpuKvStorage(layout, arena); }

    private static Tensor tensor(Weight w) { return ((TensorWeight) w).tensor(); }

    @Override
    public void embed(Weight table, int[] tokens, Activation out) {
        CpuActivation o = CpuActivation.of(out);
        TensorWeight tw = (TensorWeight) table;
        float[] row = new float[table.cols()];
        for (int t = 0; t < tokens.length; t++) {
            if (tokens[t] < 0 || tokens[t] >= table.rows()) throw new IllegalArgumentException("token id " + tokens[t] + " outside the embedding table");
            tw.decodeRow(tokens[t], row);
            MemorySegment.copy(row, 0, o.segment(), X, o.offset(t, 0), row.length);
        }
    }

    @Override
    public void matmul(Activation xa, Weight w, Activation outa) {
        CpuActivation x = CpuActivation.of(xa), out = CpuActivation.of(outa);
        Tensor t = tensor(w);
        DType type = t.dtype();
        int rows = w.rows(), cols = w.cols(), tokens = x.rows();
        if (x.cols() != cols || out.cols() != rows || out.rows() < tokens) {
            throw new IllegalArgumentException("matmul " + w.name() + " [" + rows + "x" + cols + "] with x " + x.rows() + "x" + x.cols() + " into " + out.rows() + "x" + out.cols());
        }
        MemorySegment ws = t.data(), os = out.segment();
        boolean half = HalfDot.AVAILABLE && (type == DType.BF16 || type == DType.F16);
        boolean f16 = type == DType.F16;
        CpuActivation xin = half ? deinterleaved(x) : x;
        MemorySegment xs = xin.segment();
        long rowBytes = type.bytesFor(cols);
        int grain = Math.max(4, rows / (pool.threads() * 8));
        pool.parallelFor(rows, grain, (r0, r1) -> {
            float[] four = new float[4];
            for (int tb = 0; tb < tokens; tb += TOKEN_BLOCK) {
                int te = Math.min(tokens, tb + TOKEN_BLOCK);
                for (int r = r0; r < r1; r++) {
                    long row = r * rowBytes;
                    int tk = tb;
                    for (; tk + 4 <= te; tk += 4) {
                        long x0 = x.offset(tk, 0), x1 = x.offset(tk + 1, 0), x2 = x.offset(tk + 2, 0), x3 = x.offset(tk + 3, 0);
                        if (half) HalfDot.dot4(f16, ws, row, cols, xs, x0, x1, x2, x3, four);
                        else MatVec.dot4(type, ws, row, cols, xs, x0, x1, x2, x3, four);
                        for (int i = 0; i < 4; i++) os.set(X, out.offset(tk + i, r), four[i]);
                    }
                    for (; tk < te; tk++) {
                        float v = half ? HalfDot.dot1(f16, ws, row, cols, xs, x.offset(tk, 0)) : MatVec.dot1(type, ws, row, cols, xs, x.offset(tk, 0));
                        os.set(X, out.offset(tk, r), v);
                    }
                }
            }
        });
    }

    private CpuActivation halfScratch;

    /** x with each row's 32-value chunks split into evens and odds, the layout HalfDot reads (engine thread only). */
    private CpuActivation deinterleaved(CpuActivation x) {
        if (halfScratch == null || halfScratch.segment().byteSize() < (long) x.rows() * x.cols() * Float.BYTES) {
            halfScratch = allocate(Math.max(x.rows(), 64), x.cols());
        }
        CpuActivation d = new CpuActivation(halfScratch.segment(), x.rows(), x.cols());
        for (int t = 0; t < x.rows(); t++) HalfDot.deinterleave(x.segment(), x.offset(t, 0), d.segment(), d.offset(t, 0), x.cols());
        return d;
    }

    @Override
    public void addBias(Activation xa, Weight bias) {
        CpuActivation x = CpuActivation.of(xa);
        float[] b = ((TensorWeight) bias).decodeAll();
        for (int t = 0; t < x.rows(); t++) {
            for (int c = 0; c < x.cols(); c++) x.segment().set(X, x.offset(t, c), x.segment().get(X, x.offset(t, c)) + b[c]);
        }
    }

    @Override
    public void rmsNorm(Activation xa, Weight gamma, float eps, Activation outa) {
        CpuActivation x = CpuActivation.of(xa), out = CpuActivation.of(outa);
        float[] g = ((TensorWeight) gamma).decodeAll();
        int n = x.cols();
        pool.parallelFor(x.rows(), 16, (t0, t1) -> {
            for (int t = t0; t < t1; t++) {
                long base = x.offset(t, 0);
                float ss = sumSquares(x.segment(), base, n);
                float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
                long ob = out.offset(t, 0);
                int c = 0;
                for (; c < F.loopBound(n); c += L) {
                    FloatVector v = FloatVector.fromMemorySegment(F, x.segment(), base + 4L * c, NATIVE).mul(inv)
                            .mul(FloatVector.fromArray(F, g, c));
                    v.intoMemorySegment(out.segment(), ob + 4L * c, NATIVE);
                }
                for (; c < n; c++) out.segment().set(X, ob + 4L * c, x.segment().get(X, base + 4L * c) * inv * g[c]);
            }
        });
    }

    private static float sumSquares(MemorySegment s, long base, int n) {
        FloatVector acc = FloatVector.zero(F);
        int c = 0;
        for (; c < F.loopBound(n); c += L) {
            FloatVector v = FloatVector.fromMemorySegment(F, s, base + 4L * c, NATIVE);
            acc = v.fma(v, acc);
        }
        float ss = MatVec.sum(acc);
        for (; c < n; c++) {
            float v = s.get(X, base + 4L * c);
            ss += v * v;
        }
        return ss;
    }

    @Override
    public void add(Activation acc, Activation xa) {
        CpuActivation a = CpuActivation.of(acc), x = CpuActivation.of(xa);
        long n = (long) a.rows() * a.cols();
        long c = 0;
        for (; c + L <= n; c += L) {
            FloatVector.fromMemorySegment(F, a.segment(), 4 * c, NATIVE).add(FloatVector.fromMemorySegment(F, x.segment(), 4 * c, NATIVE))
                    .intoMemorySegment(a.segment(), 4 * c, NATIVE);
        }
        for (; c < n; c++) a.segment().set(X, 4 * c, a.segment().get(X, 4 * c) + x.segment().get(X, 4 * c));
    }

    @Override
    public void rope(Activation xa, int heads, int[] positions, Rope rope) {
        CpuActivation x = CpuActivation.of(xa);
        int hd = rope.headDim(), half = hd / 2;
        boolean inter = rope.style() == Rope.Style.INTERLEAVED;
        float[] cos = rope.cosTable(), sin = rope.sinTable();
        MemorySegment s = x.segment();
        for (int t = 0; t < x.rows(); t++) {
            int pos = positions[t];
            rope.checkPosition(pos);
            int tb = pos * half;
            for (int h = 0; h < heads; h++) {
                long base = x.offset(t, h * hd);
                for (int i = 0; i < half; i++) {
                    long o0 = base + 4L * (inter ? 2 * i : i), o1 = base + 4L * (inter ? 2 * i + 1 : i + half);
                    float c = cos[tb + i], sn = sin[tb + i], v0 = s.get(X, o0), v1 = s.get(X, o1);
                    s.set(X, o0, v0 * c - v1 * sn);
                    s.set(X, o1, v0 * sn + v1 * c);
                }
            }
        }
    }

    @Override
    public void swiglu(Activation gate, Activation up, Activation outa) {
        CpuActivation g = CpuActivation.of(gate), u = CpuActivation.of(up), o = CpuActivation.of(outa);
        int n = g.cols();
        pool.parallelFor(g.rows(), 8, (t0, t1) -> {
            for (int t = t0; t < t1; t++) {
                long gb = g.offset(t, 0), ub = u.offset(t, 0), ob = o.offset(t, 0);
                // Math.exp, not the vector EXP: their interpreted and compiled results differ (see MatVec.sum).
                for (int c = 0; c < n; c++) {
                    float v = g.segment().get(X, gb + 4L * c);
                    o.segment().set(X, ob + 4L * c, (float) (v / (1 + Math.exp(-v))) * u.segment().get(X, ub + 4L * c));
                }
            }
        });
    }

    @Override
    public void writeKv(KvStorage kv, int layer, Activation k, Activation v, int[] slots) {
        CpuKvStorage s = CpuKvStorage.of(kv);
        CpuActivation kk = CpuActivation.of(k), vv = CpuActivation.of(v);
        long rowBytes = (long) s.layout().kvDim() * Float.BYTES;
        for (int t = 0; t < kk.rows(); t++) {
            if (slots[t] < 0 || slots[t] >= s.layout().slots()) throw new IllegalArgumentException("KV slot " + slots[t] + " outside the cache");
            MemorySegment.copy(kk.segment(), kk.offset(t, 0), s.keys(layer), s.offset(slots[t], 0), rowBytes);
            MemorySegment.copy(vv.segment(), vv.offset(t, 0), s.values(layer), s.offset(slots[t], 0), rowBytes);
        }
    }

    @Override
    public void attention(Activation qa, KvStorage kv, int layer, AttentionBatch batch, Activation outa) {
        CpuActivation q = CpuActivation.of(qa), out = CpuActivation.of(outa);
        CpuKvStorage s = CpuKvStorage.of(kv);
        int heads = batch.heads(), hd = batch.headDim(), bs = s.layout().blockSize(), group = batch.groupSize();
        MemorySegment keys = s.keys(layer), values = s.values(layer);
        // Flatten (query row, head) into tasks; each task's arithmetic depends only on its own row.
        int rows = 0;
        for (AttentionBatch.Seq seq : batch.seqs()) rows += seq.qLen();
        int[] rowSeq = new int[rows];
        int r = 0;
        for (int i = 0; i < batch.seqs().size(); i++) for (int j = 0; j < batch.seqs().get(i).qLen(); j++) rowSeq[r++] = i;
        int[] rowIndex = new int[rows];
        r = 0;
        for (AttentionBatch.Seq seq : batch.seqs()) for (int j = 0; j < seq.qLen(); j++) rowIndex[r++] = j;
        float scale = batch.scale();
        pool.parallelFor(rows * heads, 2, (a, b) -> {
            for (int task = a; task < b; task++) {
                int qi = task / heads, h = task % heads;
                AttentionBatch.Seq seq = batch.seqs().get(rowSeq[qi]);
                int i = rowIndex[qi];
                int row = seq.qStart() + i;
                int pos = seq.ctxLen() - seq.qLen() + i;
                int kvh = h / group;
                float[] sc = scratch.get();
                if (sc.length < pos + 1 + hd) {
                    sc = new float[Math.max(pos + 1 + hd, sc.length * 2)];
                    scratch.set(sc);
                }
                long qo = q.offset(row, h * hd);
                float max = Float.NEGATIVE_INFINITY;
                for (int p = 0; p <= pos; p++) {
                    long slot = (long) seq.blockTable()[p / bs] * bs + p % bs;
                    float d = headDot(q.segment(), qo, keys, s.offset(slot, kvh), hd) * scale;
                    sc[p] = d;
                    if (d > max) max = d;
                }
                float sum = expInPlace(sc, pos + 1, max);
                float inv = 1f / sum;
                // Output accumulates in the tail of the scratch array: sc[pos + 1 .. pos + 1 + hd).
                int acc = pos + 1;
                java.util.Arrays.fill(sc, acc, acc + hd, 0f);
                for (int p = 0; p <= pos; p++) {
                    long slot = (long) seq.blockTable()[p / bs] * bs + p % bs;
                    axpy(sc[p], values, s.offset(slot, kvh), sc, acc, hd);
                }
                long oo = out.offset(row, h * hd);
                for (int d = 0; d < hd; d++) out.segment().set(X, oo + 4L * d, sc[acc + d] * inv);
            }
        });
    }

    private static float headDot(MemorySegment a, long ao, MemorySegment b, long bo, int n) {
        FloatVector acc = FloatVector.zero(F);
        for (int c = 0; c < n; c += L) {
            VectorMask<Float> m = F.indexInRange(c, n);
            acc = FloatVector.fromMemorySegment(F, a, ao + 4L * c, NATIVE, m).fma(FloatVector.fromMemorySegment(F, b, bo + 4L * c, NATIVE, m), acc);
        }
        return MatVec.sum(acc);
    }

    /** v[i] = exp(v[i] - max) for i < n; returns the sum. */
    private static float expInPlace(float[] v, int n, float max) {
        // Math.exp rather than the vector EXP, whose interpreted and compiled results differ (see MatVec.sum).
        float s = 0;
        for (int i = 0; i < n; i++) {
            v[i] = (float) Math.exp(v[i] - max);
            s += v[i];
        }
        return s;
    }

    /** y[yo + d] += a * x[d] for d < n. */
    private static void axpy(float a, MemorySegment x, long xo, float[] y, int yo, int n) {
        FloatVector av = FloatVector.broadcast(F, a);
        int d = 0;
        for (; d < F.loopBound(n); d += L) {
            FloatVector.fromMemorySegment(F, x, xo + 4L * d, NATIVE).fma(av, FloatVector.fromArray(F, y, yo + d)).intoArray(y, yo + d);
        }
        for (; d < n; d++) y[yo + d] += a * x.get(X, xo + 4L * d);
    }

    @Override
    public void gatherRows(Activation x, int[] rows, Activation out) {
        CpuActivation a = CpuActivation.of(x), o = CpuActivation.of(out);
        for (int i = 0; i < rows.length; i++) {
            MemorySegment.copy(a.segment(), a.offset(rows[i], 0), o.segment(), o.offset(i, 0), (long) a.cols() * Float.BYTES);
        }
    }

    @Override
    public void read(Activation x, int row, float[] dst) {
        CpuActivation a = CpuActivation.of(x);
        MemorySegment.copy(a.segment(), X, a.offset(row, 0), dst, 0, a.cols());
    }

    @Override
    public void close() {
        pool.close();
        arena.close();
    }
}
