package dev.tandem.core.backend.cpu;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.AttentionBatch;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.Rope;
import dev.tandem.core.backend.Weight;
import dev.tandem.core.quant.GroupQuant4;
import dev.tandem.core.quant.Gq4Layout;
import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The CPU backend: Vector API kernels on native memory, spread over a persistent {@link CpuThreadPool}.
 * Matmuls run through per-format kernels ({@link MatmulKernel}), attention through {@link CpuAttention},
 * the row-wise ops through {@link CpuOps}. Every op computes a row the same way whatever the batch and
 * whichever thread runs it, so results are batch-invariant bit for bit.
 */
public final class CpuBackend implements Backend {
    /** Row-wise ops smaller than this many elements run on the caller alone: a dispatch would cost more. */
    private static final int PARALLEL_ELEMENTS = 1 << 15;

    private final Arena arena = Arena.ofShared();
    private final CpuThreadPool pool;
    private final boolean ownsPool;

    /** A backend with its own pool on every available core. */
    public CpuBackend() {
        this(new CpuThreadPool(), true);
    }

    /** A backend with its own pool of {@code threads} threads (the caller included). */
    public CpuBackend(int threads) {
        this(new CpuThreadPool(threads, CpuThreadPool.DEFAULT_SPIN_NANOS), true);
    }

    /** A backend on a shared pool, which close() leaves running. */
    public CpuBackend(CpuThreadPool pool) {
        this(pool, false);
    }

    private CpuBackend(CpuThreadPool pool, boolean ownsPool) {
        this.pool = pool;
        this.ownsPool = ownsPool;
    }

    @Override
    public String name() { return "cpu"; }

    public CpuThreadPool pool() { return pool; }

    @Override
    public CpuWeight upload(Tensor tensor) { return new CpuWeight(tensor, arena); }

    /** Bytes of the matmul layout of a matrix like {@code tensor}, for {@link #uploadInto}. */
    public long packedBytes(Tensor tensor) { return packedBytes(tensor.dtype(), tensor.rows(), tensor.cols()); }

    public long packedBytes(dev.tandem.core.tensor.DType type, int rows, int cols) { return MatmulKernel.of(type).packedBytes(rows, cols); }

    /**
     * A matmul weight packed now into caller-owned {@code buffer} ({@link #packedBytes} bytes, 64-byte aligned), so that
     * an offloaded run can reuse a few buffers for all layers; only matmul may use it, and only until the buffer is refilled.
     */
    public CpuWeight uploadInto(Tensor tensor, MemorySegment buffer) {
        if (buffer.byteSize() < packedBytes(tensor)) throw new IllegalArgumentException("buffer of " + buffer.byteSize() + " bytes for " + tensor);
        return new CpuWeight(tensor, buffer);
    }

    @Override
    public CpuActivation allocate(int rows, int cols) {
        return new CpuActivation(arena.allocate(Math.max(1, (long) rows * cols * Float.BYTES), 64), rows, cols);
    }

    @Override
    public KvStorage allocateKv(KvLayout layout) { return new CpuKvStorage(layout, arena); }

    @Override
    public void embed(Weight table, int[] tokens, Activation out) {
        CpuWeight w = CpuWeight.of(table);
        CpuActivation o = CpuActivation.of(out);
        int cols = w.cols();
        if (o.cols() != cols || o.rows() < tokens.length) throw new IllegalArgumentException("embed output shape");
        for (int token : tokens) {
            if (token < 0 || token >= w.rows()) throw new IllegalArgumentException("token " + token + " outside vocabulary");
        }
        rows(tokens.length, cols, t -> {
            float[] row = new float[cols];
            Codec.decode(w.dtype(), w.source().data(), (long) tokens[t] * cols, row, 0, cols);
            MemorySegment.copy(row, 0, o.segment(), ValueLayout.JAVA_FLOAT, o.offset(t, 0), cols);
        });
    }

    @Override
    public void matmul(Activation x, Weight w, Activation out) {
        CpuMatmul.matmul(pool, CpuActivation.of(x), CpuWeight.of(w), CpuActivation.of(out));
    }

    @Override
    public void addBias(Activation x, Weight bias) {
        CpuActivation a = CpuActivation.of(x);
        float[] b = CpuWeight.of(bias).values();
        if (b.length != a.cols()) throw new IllegalArgumentException("bias of " + b.length + " for " + a.cols() + " columns");
        rows(a.rows(), a.cols(), r -> CpuOps.addBias(a, r, b, false));
    }

    @Override
    public void rmsNorm(Activation x, Weight gamma, float eps, Activation out) {
        CpuActivation a = CpuActivation.of(x), o = CpuActivation.of(out);
        float[] g = CpuWeight.of(gamma).values();
        if (g.length != a.cols() || o.cols() != a.cols()) throw new IllegalArgumentException("rmsNorm shapes");
        rows(a.rows(), a.cols(), r -> CpuOps.rmsNorm(a, r, g, eps, o));
    }

    @Override
    public void layerNorm(Activation x, Weight gamma, Weight beta, float eps, Activation out) {
        CpuActivation a = CpuActivation.of(x), o = CpuActivation.of(out);
        float[] g = CpuWeight.of(gamma).values(), b = CpuWeight.of(beta).values();
        if (g.length != a.cols() || b.length != a.cols() || o.cols() != a.cols()) throw new IllegalArgumentException("layerNorm shapes");
        rows(a.rows(), a.cols(), r -> CpuOps.layerNorm(a, r, g, b, eps, o));
    }

    /** Each row's add and norm in one visit while the row is in cache. */
    @Override
    public void addLayerNorm(Activation acc, Activation x, Weight gamma, Weight beta, float eps, Activation out) {
        CpuActivation a = CpuActivation.of(acc), xi = CpuActivation.of(x), o = CpuActivation.of(out);
        float[] g = CpuWeight.of(gamma).values(), b = CpuWeight.of(beta).values();
        if (a.cols() != xi.cols() || xi.rows() < a.rows() || g.length != a.cols() || b.length != a.cols() || o.cols() != a.cols()) {
            throw new IllegalArgumentException("addLayerNorm shapes");
        }
        rows(a.rows(), a.cols(), r -> {
            CpuOps.add(a, xi, r);
            CpuOps.layerNorm(a, r, g, b, eps, o);
        });
    }

    @Override
    public void relu(Activation x) {
        CpuActivation a = CpuActivation.of(x);
        rows(a.rows(), a.cols(), r -> CpuOps.addBias(a, r, null, true));
    }

    @Override
    public void addBiasRelu(Activation x, Weight bias) {
        CpuActivation a = CpuActivation.of(x);
        float[] b = CpuWeight.of(bias).values();
        if (b.length != a.cols()) throw new IllegalArgumentException("bias of " + b.length + " for " + a.cols() + " columns");
        rows(a.rows(), a.cols(), r -> CpuOps.addBias(a, r, b, true));
    }

    @Override
    public void addPositionEmbedding(Activation x, Weight table, int[] positions, int offset) {
        CpuWeight w = CpuWeight.of(table);
        CpuActivation a = CpuActivation.of(x);
        int cols = w.cols();
        if (a.cols() != cols || positions.length < a.rows()) throw new IllegalArgumentException("addPositionEmbedding shapes");
        for (int t = 0; t < a.rows(); t++) {
            int row = positions[t] + offset;
            if (row < 0 || row >= w.rows()) {
                throw new IllegalArgumentException("position " + positions[t] + " outside the " + (w.rows() - offset) + " positions of " + w.name());
            }
        }
        rows(a.rows(), cols, t -> {
            float[] row = new float[cols];
            Codec.decode(w.dtype(), w.source().data(), (long) (positions[t] + offset) * cols, row, 0, cols);
            CpuOps.addBias(a, t, row, false); // a row of the table is a bias of its own
        });
    }

    @Override
    public void add(Activation acc, Activation x) {
        CpuActivation a = CpuActivation.of(acc), b = CpuActivation.of(x);
        if (a.cols() != b.cols() || b.rows() < a.rows()) throw new IllegalArgumentException("add shapes");
        rows(a.rows(), a.cols(), r -> CpuOps.add(a, b, r));
    }

    @Override
    public void rope(Activation x, int heads, int[] positions, Rope rope) {
        CpuActivation a = CpuActivation.of(x);
        if (a.cols() != heads * rope.headDim() || positions.length < a.rows()) throw new IllegalArgumentException("rope shapes");
        for (int r = 0; r < a.rows(); r++) rope.checkPosition(positions[r]);
        rows(a.rows(), a.cols(), r -> {
            float[] cs = new float[rope.headDim()], sn = new float[rope.headDim()];
            CpuOps.rope(a, r, heads, positions[r], rope, cs, sn);
        });
    }

    @Override
    public void swiglu(Activation gate, Activation up, Activation out) {
        CpuActivation g = CpuActivation.of(gate), u = CpuActivation.of(up), o = CpuActivation.of(out);
        if (g.cols() != u.cols() || g.cols() != o.cols()) throw new IllegalArgumentException("swiglu shapes");
        rows(g.rows(), g.cols(), r -> CpuOps.swiglu(g, u, o, r));
    }

    @Override
    public void writeKv(KvStorage kv, int layer, Activation k, Activation v, int[] slots) {
        CpuKvStorage s = CpuKvStorage.of(kv);
        CpuActivation kk = CpuActivation.of(k), vv = CpuActivation.of(v);
        int kvDim = s.layout().kvDim();
        if (kk.cols() != kvDim || vv.cols() != kvDim) throw new IllegalArgumentException("writeKv: rows of " + kk.cols() + ", cache " + kvDim);
        long rowBytes = (long) kvDim * Float.BYTES;
        if (s.compressed()) {
            // Each token's row compressed into its slot: one group per 64 of head_dim per KV head.
            Gq4Layout slot = s.layout().slotLayout();
            for (int t = 0; t < kk.rows(); t++) {
                if (slots[t] < 0 || slots[t] >= s.layout().slots()) throw new IllegalArgumentException("slot " + slots[t]);
                GroupQuant4.quantize(kk.segment().asSlice(kk.offset(t, 0), rowBytes), DType.F32, slot, s.keys(layer), s.offset(slots[t], 0), GroupQuant4.KV_RANGE);
                GroupQuant4.quantize(vv.segment().asSlice(vv.offset(t, 0), rowBytes), DType.F32, slot, s.values(layer), s.offset(slots[t], 0), GroupQuant4.KV_RANGE);
            }
            return;
        }
        for (int t = 0; t < kk.rows(); t++) {
            if (slots[t] < 0 || slots[t] >= s.layout().slots()) throw new IllegalArgumentException("slot " + slots[t]);
            MemorySegment.copy(kk.segment(), kk.offset(t, 0), s.keys(layer), s.offset(slots[t], 0), rowBytes);
            MemorySegment.copy(vv.segment(), vv.offset(t, 0), s.values(layer), s.offset(slots[t], 0), rowBytes);
        }
    }

    @Override
    public void attention(Activation q, KvStorage kv, int layer, AttentionBatch batch, Activation out) {
        CpuAttention.run(pool, CpuActivation.of(q), CpuKvStorage.of(kv), layer, batch, CpuActivation.of(out));
    }

    @Override
    public void gatherRows(Activation x, int[] rows, Activation out) {
        CpuActivation a = CpuActivation.of(x), o = CpuActivation.of(out);
        if (a.cols() != o.cols()) throw new IllegalArgumentException("gatherRows shapes");
        long bytes = (long) a.cols() * Float.BYTES;
        for (int i = 0; i < rows.length; i++) {
            if (rows[i] < 0 || rows[i] >= a.rows()) throw new IllegalArgumentException("row " + rows[i]);
            MemorySegment.copy(a.segment(), a.offset(rows[i], 0), o.segment(), o.offset(i, 0), bytes);
        }
    }

    @Override
    public void read(Activation x, int row, float[] dst) {
        CpuActivation a = CpuActivation.of(x);
        MemorySegment.copy(a.segment(), ValueLayout.JAVA_FLOAT, a.offset(row, 0), dst, 0, a.cols());
    }

    @Override
    public void close() {
        if (ownsPool) pool.close();
        arena.close();
    }

    /** Runs body for rows [0, n): on the caller when small, else in chunks over the pool. */
    private void rows(int n, int cols, CpuThreadPool.Body body) {
        long elements = (long) n * cols;
        if (n <= 1 || elements < PARALLEL_ELEMENTS) {
            for (int r = 0; r < n; r++) body.run(r);
            return;
        }
        int chunks = Math.min(n, pool.threads() * 4);
        int per = (n + chunks - 1) / chunks;
        pool.parallelFor((n + per - 1) / per, c -> {
            for (int r = c * per; r < Math.min(n, (c + 1) * per); r++) body.run(r);
        });
    }
}
