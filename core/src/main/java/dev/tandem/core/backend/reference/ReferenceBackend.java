package dev.tandem.core.backend.reference;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.AttentionBatch;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.Rope;
import dev.tandem.core.backend.TensorWeight;
import dev.tandem.core.backend.Weight;
import dev.tandem.core.backend.cpu.CpuActivation;
import dev.tandem.core.backend.cpu.CpuKvStorage;
import dev.tandem.core.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Plain scalar loops, one thread, double accumulation where it is cheap: the definition of every op that
 * the vectorised and GPU backends are tested against. Slow on purpose; never used to serve.
 */
public class ReferenceBackend implements Backend {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private final Arena arena = Arena.ofShared();

    @Override
    public String name() { return "reference"; }

    @Override
    public Weight upload(Tensor tensor) { return new TensorWeight(tensor); }

    @Override
    public CpuActivation allocate(int rows, int cols) {
        return new CpuActivation(arena.allocate((long) rows * cols * Float.BYTES, 64), rows, cols);
    }

    @Override
    public KvStorage allocateKv(KvLayout layout) {
        if (layout.format() != KvLayout.Format.F32) throw new IllegalArgumentException("the reference backend keeps its KV cache in f32, not " + layout.format());
        return new CpuKvStorage(layout, arena);
    }

    private static float get(CpuActivation a, int r, int c) { return a.segment().get(F, a.offset(r, c)); }

    private static void set(CpuActivation a, int r, int c, float v) { a.segment().set(F, a.offset(r, c), v); }

    private static TensorWeight tw(Weight w) { return (TensorWeight) w; }

    @Override
    public void embed(Weight table, int[] tokens, Activation out) {
        CpuActivation o = CpuActivation.of(out);
        float[] row = new float[table.cols()];
        for (int t = 0; t < tokens.length; t++) {
            tw(table).decodeRow(tokens[t], row);
            for (int c = 0; c < row.length; c++) set(o, t, c, row[c]);
        }
    }

    @Override
    public void matmul(Activation x, Weight w, Activation out) {
        CpuActivation a = CpuActivation.of(x), o = CpuActivation.of(out);
        float[] row = new float[w.cols()];
        for (int r = 0; r < w.rows(); r++) {
            tw(w).decodeRow(r, row);
            for (int t = 0; t < a.rows(); t++) {
                double s = 0;
                for (int c = 0; c < row.length; c++) s += (double) row[c] * get(a, t, c);
                set(o, t, r, (float) s);
            }
        }
    }

    @Override
    public void addBias(Activation x, Weight bias) {
        CpuActivation a = CpuActivation.of(x);
        float[] b = tw(bias).decodeAll();
        for (int t = 0; t < a.rows(); t++) for (int c = 0; c < a.cols(); c++) set(a, t, c, get(a, t, c) + b[c]);
    }

    @Override
    public void rmsNorm(Activation x, Weight gamma, float eps, Activation out) {
        CpuActivation a = CpuActivation.of(x), o = CpuActivation.of(out);
        float[] g = tw(gamma).decodeAll();
        for (int t = 0; t < a.rows(); t++) {
            double ss = 0;
            for (int c = 0; c < a.cols(); c++) ss += (double) get(a, t, c) * get(a, t, c);
            double inv = 1.0 / Math.sqrt(ss / a.cols() + eps);
            for (int c = 0; c < a.cols(); c++) set(o, t, c, (float) (get(a, t, c) * inv * g[c]));
        }
    }

    @Override
    public void layerNorm(Activation x, Weight gamma, Weight beta, float eps, Activation out) {
        CpuActivation a = CpuActivation.of(x), o = CpuActivation.of(out);
        float[] g = tw(gamma).decodeAll(), b = tw(beta).decodeAll();
        int n = a.cols();
        for (int t = 0; t < a.rows(); t++) {
            double sum = 0;
            for (int c = 0; c < n; c++) sum += get(a, t, c);
            double mean = sum / n, ss = 0;
            for (int c = 0; c < n; c++) ss += (get(a, t, c) - mean) * (get(a, t, c) - mean);
            double inv = 1.0 / Math.sqrt(ss / n + eps);
            for (int c = 0; c < n; c++) set(o, t, c, (float) ((get(a, t, c) - mean) * inv * g[c] + b[c]));
        }
    }

    @Override
    public void relu(Activation x) {
        CpuActivation a = CpuActivation.of(x);
        for (int t = 0; t < a.rows(); t++) for (int c = 0; c < a.cols(); c++) set(a, t, c, Math.max(0f, get(a, t, c)));
    }

    @Override
    public void addPositionEmbedding(Activation x, Weight table, int[] positions, int offset) {
        CpuActivation a = CpuActivation.of(x);
        float[] row = new float[table.cols()];
        for (int t = 0; t < a.rows(); t++) {
            tw(table).decodeRow(positions[t] + offset, row);
            for (int c = 0; c < row.length; c++) set(a, t, c, get(a, t, c) + row[c]);
        }
    }

    @Override
    public void add(Activation acc, Activation x) {
        CpuActivation a = CpuActivation.of(acc), b = CpuActivation.of(x);
        for (int t = 0; t < a.rows(); t++) for (int c = 0; c < a.cols(); c++) set(a, t, c, get(a, t, c) + get(b, t, c));
    }

    @Override
    public void rope(Activation x, int heads, int[] positions, Rope rope) {
        CpuActivation a = CpuActivation.of(x);
        int hd = rope.headDim(), half = hd / 2;
        for (int t = 0; t < a.rows(); t++) {
            int pos = positions[t];
            rope.checkPosition(pos);
            for (int h = 0; h < heads; h++) {
                int base = h * hd;
                for (int i = 0; i < half; i++) {
                    int i0 = rope.style() == Rope.Style.INTERLEAVED ? base + 2 * i : base + i;
                    int i1 = rope.style() == Rope.Style.INTERLEAVED ? base + 2 * i + 1 : base + i + half;
                    float c = rope.cos(pos, i), s = rope.sin(pos, i);
                    float v0 = get(a, t, i0), v1 = get(a, t, i1);
                    set(a, t, i0, v0 * c - v1 * s);
                    set(a, t, i1, v0 * s + v1 * c);
                }
            }
        }
    }

    @Override
    public void swiglu(Activation gate, Activation up, Activation out) {
        CpuActivation g = CpuActivation.of(gate), u = CpuActivation.of(up), o = CpuActivation.of(out);
        for (int t = 0; t < g.rows(); t++) {
            for (int c = 0; c < g.cols(); c++) {
                double v = get(g, t, c);
                set(o, t, c, (float) (v / (1 + Math.exp(-v)) * get(u, t, c)));
            }
        }
    }

    @Override
    public void writeKv(KvStorage kv, int layer, Activation k, Activation v, int[] slots) {
        CpuKvStorage s = CpuKvStorage.of(kv);
        CpuActivation kk = CpuActivation.of(k), vv = CpuActivation.of(v);
        long rowBytes = (long) s.layout().kvDim() * Float.BYTES;
        for (int t = 0; t < kk.rows(); t++) {
            MemorySegment.copy(kk.segment(), kk.offset(t, 0), s.keys(layer), s.offset(slots[t], 0), rowBytes);
            MemorySegment.copy(vv.segment(), vv.offset(t, 0), s.values(layer), s.offset(slots[t], 0), rowBytes);
        }
    }

    @Override
    public void attention(Activation q, KvStorage kv, int layer, AttentionBatch batch, Activation out) {
        CpuActivation qa = CpuActivation.of(q), o = CpuActivation.of(out);
        CpuKvStorage s = CpuKvStorage.of(kv);
        int hd = batch.headDim(), bs = s.layout().blockSize();
        MemorySegment keys = s.keys(layer), values = s.values(layer);
        for (AttentionBatch.Seq seq : batch.seqs()) {
            for (int i = 0; i < seq.qLen(); i++) {
                int row = seq.qStart() + i;
                int pos = seq.ctxLen() - seq.qLen() + i;
                for (int h = 0; h < batch.heads(); h++) {
                    int kvh = h / batch.groupSize();
                    double[] scores = new double[pos + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int p = 0; p <= pos; p++) {
                        long slot = (long) seq.blockTable()[p / bs] * bs + p % bs;
                        double dot = 0;
                        for (int d = 0; d < hd; d++) {
                            dot += (double) get(qa, row, h * hd + d) * keys.get(F, s.offset(slot, kvh) + 4L * d);
                        }
                        scores[p] = dot * batch.scale();
                        max = Math.max(max, scores[p]);
                    }
                    double sum = 0;
                    for (int p = 0; p <= pos; p++) { scores[p] = Math.exp(scores[p] - max); sum += scores[p]; }
                    for (int d = 0; d < hd; d++) {
                        double acc = 0;
                        for (int p = 0; p <= pos; p++) {
                            long slot = (long) seq.blockTable()[p / bs] * bs + p % bs;
                            acc += scores[p] * values.get(F, s.offset(slot, kvh) + 4L * d);
                        }
                        set(o, row, h * hd + d, (float) (acc / sum));
                    }
                }
            }
        }
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
        MemorySegment.copy(a.segment(), F, a.offset(row, 0), dst, 0, a.cols());
    }

    @Override
    public void close() { arena.close(); }
}
