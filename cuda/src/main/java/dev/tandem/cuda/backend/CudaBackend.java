package dev.tandem.cuda.backend;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.AttentionBatch;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.Rope;
import dev.tandem.core.backend.Weight;
import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;
import dev.tandem.cuda.CublasLt;
import dev.tandem.cuda.CudaDriver;
import dev.tandem.cuda.CudaException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@link Backend} on an NVIDIA GPU: cuBLASLt for every matrix product, Tandem's kernels for the rest, all on one
 * stream of the device's primary context. Weights are copied to the device once, as bf16 (or f32 in
 * {@link Precision#F32}); activations are f32 with a bf16 mirror written by the ops that feed a GEMM; the paged KV
 * cache is bf16 (f32 in {@link Precision#F32}). Step metadata moves to the device in one copy per step
 * ({@link #beginStep}), and decode steps padded to fixed sizes are recorded once as CUDA graphs and replayed.
 *
 * <p>Not thread-safe: the engine's loop thread drives it (the context is made current on whichever thread calls).
 */
public final class CudaBackend implements Backend {
    /** Storage of weight matrices and the KV cache. */
    public enum Precision {
        /** bf16 weights and KV cache, bf16 GEMM inputs, fp32 accumulation and activations: the fast default. */
        BF16,
        /** f32 everywhere (true fp32 GEMMs): slower, for checking against fp32 references. */
        F32
    }

    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT;
    private static final int FLASH_ROWS = 64;
    /** Tandem's GEMV for products of one row (TANDEM_GEMV=0: cuBLASLt for all). */
    private static final boolean GEMV = !"0".equals(System.getenv("TANDEM_GEMV"));
    /**
     * Most rows the GEMV takes. Measured on the H200 (8B shape, `bench spec --pass-cost`): with the GEMV a pass over
     * 2 / 3 / 4 / 8 rows cost 1.14 / 1.33 / 2.02 / 3.68 single-row passes (its per-row accumulators cost occupancy),
     * while cuBLASLt's pass over 9 rows cost 1.02.
     */
    private static final int GEMV_ROWS = 1;
    /** Keys per tile of tdm_attn_decode (DT in the kernel source). */
    private static final int DECODE_TILE = 32;
    /**
     * Decode attention over bf16 KV with head_dim 64 or 128 runs the tiled kernel; TANDEM_DECODE_ATTENTION=split
     * keeps the older warp-per-key kernel (for side-by-side timing).
     */
    private static final boolean TILED_DECODE = !"split".equals(System.getenv("TANDEM_DECODE_ATTENTION"));
    /** Decode batch sizes recorded as graphs; a step of n sequences is padded to the next one. */
    private static final int[] GRAPH_SIZES = {1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256};

    private final CudaDriver cuda;
    private final int ordinal;
    private final int device;
    private final MemorySegment context;
    private final MemorySegment stream;
    private final CublasLt blas;
    private final CudaKernels kernels;
    private final Precision precision;
    private final int smCount;
    private final boolean graphs;
    private final List<Long> allocations = new ArrayList<>();
    private final Map<Long, Long> sizes = new java.util.HashMap<>();
    private long allocatedBytes;
    private final Map<Rope, long[]> ropeTables = new IdentityHashMap<>();
    private final Arena arena = Arena.ofShared();
    /** Kernel parameters: one slot per argument value and the pointer array cuLaunchKernel reads. */
    private final MemorySegment argValues = arena.allocate(8L * 32, 8), argPointers = arena.allocate(ValueLayout.ADDRESS, 32);

    // Step metadata: packed on the host in pinned memory, copied to the device in one transfer.
    private MemorySegment metaHost;
    private long metaDevice, metaCapacity;
    private Step step;
    // Split-K attention partials, grown on demand (growing invalidates recorded graphs).
    private long partO, partML, partCapacity;
    private long scratchInts, scratchIntsCapacity;
    private MemorySegment hostRow;
    private final StepGraphs recordings;
    private final MemorySegment kvGather, kvScatter;

    public CudaBackend(int device, Precision precision) {
        this(device, precision, true);
    }

    /** @param graphs whether decode steps are recorded and replayed as CUDA graphs */
    public CudaBackend(int device, Precision precision, boolean graphs) {
        this.cuda = CudaDriver.get();
        int count = cuda.deviceCount();
        if (device < 0 || device >= count) {
            throw new CudaException("cuda:" + device + " does not exist: the driver reports " + count + " device(s)");
        }
        this.ordinal = device;
        this.device = cuda.device(device);
        this.context = cuda.usePrimaryContext(this.device);
        this.precision = precision;
        this.graphs = graphs;
        this.stream = cuda.createStream();
        this.recordings = new StepGraphs(cuda, stream);
        this.blas = new CublasLt(cuda);
        // Decode steps are padded to these with graphs on; other row counts take the heuristic's choice. Without graphs
        // (calibration, per-op profiles) decode batches are not padded, and every count up to TUNE_MAX_ROWS is timed.
        if (graphs) blas.tuneOnly(GRAPH_SIZES);
        this.kernels = new CudaKernels(cuda, this.device);
        this.smCount = cuda.deviceAttribute(16 /* MULTIPROCESSOR_COUNT */, this.device);
        for (String f : new String[] {"tdm_flash2_prefill_64", "tdm_flash2_prefill_128"}) {
            cuda.setMaxDynamicSharedMemory(kernels.get(f), flash2SharedBytes(128));
        }
        // Resolved here: transports launch them from their own threads, and the kernel table is the loop thread's.
        this.kvGather = kernels.get("tdm_kv_gather");
        this.kvScatter = kernels.get("tdm_kv_scatter");
        for (int i = 0; i < 32; i++) argPointers.setAtIndex(ValueLayout.ADDRESS, i, argValues.asSlice(8L * i, 8));
        hostRow = cuda.hostAlloc(1 << 20);
    }

    @Override
    public String name() {
        return "cuda:" + device + " (" + cuda.deviceName(device) + ", " + precision.name().toLowerCase() + ", kernels: " + kernels.origin() + ")";
    }

    public Precision precision() { return precision; }

    /** The CUdevice this backend runs on (for NVML and device queries). */
    public int deviceHandle() { return device; }

    private void use() {
        if (!cuda.isCurrent(context)) cuda.usePrimaryContext(device);
    }

    private long malloc(long bytes) {
        long size = Math.max(bytes, 256);
        long p = cuda.malloc(size);
        allocations.add(p);
        sizes.put(p, size);
        allocatedBytes += size;
        return p;
    }

    private void release(long p) {
        if (p != 0 && allocations.remove(p)) {
            cuda.free(p);
            Long size = sizes.remove(p);
            if (size != null) allocatedBytes -= size;
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Memory: weights, activations, KV cache
    // ---------------------------------------------------------------------------------------------------------

    /** A weight on the device: matrices in the backend's precision, 1-D weights (gammas, biases) as f32. */
    record CudaWeight(String name, DType dtype, int rows, int cols, long ptr) implements Weight {}

    @Override
    public Weight upload(Tensor t) {
        use();
        DType target = t.shape().length == 1 || precision == Precision.F32 ? DType.F32 : DType.BF16;
        long ptr = malloc(target.bytesFor(t.elements()));
        copyIn(t, ptr, target);
        return new CudaWeight(t.name(), target, t.rows(), t.cols(), ptr);
    }

    /** q|k|v and gate|up as one matrix: one product instead of three or two (fewer, fuller kernels). */
    @Override
    public Weight uploadStacked(String name, List<Tensor> parts) {
        use();
        int cols = parts.get(0).cols();
        long rows = 0;
        for (Tensor t : parts) {
            if (t.shape().length != 2 || t.cols() != cols) {
                throw new IllegalArgumentException("cannot stack " + t + " with " + parts.get(0) + ": matrices of one input width only");
            }
            rows += t.rows();
        }
        DType target = precision == Precision.F32 ? DType.F32 : DType.BF16;
        long ptr = malloc(target.bytesFor(rows * cols));
        long at = 0;
        for (Tensor t : parts) {
            copyIn(t, ptr + target.bytesFor(at * cols), target);
            at += t.rows();
        }
        return new CudaWeight(name, target, (int) rows, cols, ptr);
    }

    /** Copies a tensor into device memory as {@code target}, converting on the host in chunks of whole rows. */
    private void copyIn(Tensor t, long ptr, DType target) {
        if (t.dtype() == target) {
            cuda.copyToDevice(ptr, t.data(), t.data().byteSize());
            return;
        }
        int cols = t.cols();
        int rowsPerChunk = (int) Math.max(1, Math.min(t.rows(), (16L << 20) / Math.max(1, cols)));
        float[] values = new float[rowsPerChunk * cols];
        try (Arena a = Arena.ofConfined()) {
            MemorySegment staging = a.allocate(target.bytesFor((long) rowsPerChunk * cols), 64);
            for (long row = 0; row < t.rows(); row += rowsPerChunk) {
                int rows = (int) Math.min(rowsPerChunk, t.rows() - row);
                int count = rows * cols;
                Codec.decode(t.dtype(), t.data(), row * cols, values, 0, count);
                long bytes = Codec.encode(target, values, 0, count, staging, 0);
                cuda.copyToDevice(ptr + target.bytesFor(row * cols), staging, bytes);
            }
        }
    }

    /** f32 device memory plus a bf16 mirror; views share the parent's memory and mirror state. */
    static final class Buffer {
        final long f32, bf16;
        /** Rows whose bf16 mirror matches the f32 values (written by the op that produced them). */
        int mirrorRows;
        /** Only the mirror was written (a GEMM input nobody reads in f32); reading f32 values is a bug. */
        boolean f32Stale;

        Buffer(long f32, long bf16) {
            this.f32 = f32;
            this.bf16 = bf16;
        }
    }

    /** rows x cols starting at column {@code offset} of rows {@code ld} elements apart (ld == cols: contiguous). */
    record CudaActivation(Buffer buf, int rows, int cols, int ld, int offset) implements Activation {
        @Override
        public Activation rows(int n) {
            if (n < 0 || n > rows) throw new IllegalArgumentException("view of " + n + " rows of a " + rows + "-row activation");
            return new CudaActivation(buf, n, cols, ld, offset);
        }

        @Override
        public Activation columns(int from, int count) {
            if (from < 0 || count < 1 || from + count > cols) {
                throw new IllegalArgumentException("columns [" + from + ", " + (from + count) + ") of a " + cols + "-column activation");
            }
            return new CudaActivation(buf, rows, count, ld, offset + from);
        }

        long f32() { return buf.f32 + 4L * offset; }

        long bf16() { return buf.bf16 + 2L * offset; }

        long elements() { return (long) rows * cols; }

        boolean contiguous() { return ld == cols && offset == 0; }
    }

    /** Ops that treat an activation as one flat array take whole buffers only. */
    private static CudaActivation whole(Activation x, String op) {
        CudaActivation c = (CudaActivation) x;
        if (!c.contiguous()) throw new IllegalArgumentException(op + " takes contiguous activations, not a column view");
        return c;
    }

    @Override
    public Activation allocate(int rows, int cols) {
        use();
        long f = malloc((long) rows * cols * 4), b = malloc((long) rows * cols * 2);
        cuda.memset(f, (byte) 0, (long) rows * cols * 4);
        return new CudaActivation(new Buffer(f, b), rows, cols, cols, 0);
    }

    record CudaKv(KvLayout layout, long base, int elementBytes) implements KvStorage {
        long layerBytes() { return layout.slots() * layout.kvDim() * elementBytes; }

        long keys(int layer) { return base + 2L * layer * layerBytes(); }

        long values(int layer) { return keys(layer) + layerBytes(); }
    }

    @Override
    public KvStorage allocateKv(KvLayout layout) {
        if (layout.format() != KvLayout.Format.F32) {
            throw new IllegalArgumentException("the CUDA backend's KV cache is " + precision + "; a " + layout.format()
                    + " cache lives on the host (the offload executor decompresses its blocks with CudaGq4)");
        }
        use();
        int bytes = precision == Precision.F32 ? 4 : 2;
        long total = 2L * layout.layers() * layout.slots() * layout.kvDim() * bytes;
        long base = malloc(total);
        cuda.memset(base, (byte) 0, total);
        return new CudaKv(layout, base, bytes);
    }

    // ---------------------------------------------------------------------------------------------------------
    // KV hand-over (Splitwise): what a device transport needs from the cache, callable from the transport's threads
    // ---------------------------------------------------------------------------------------------------------

    /** cuda:N's N. */
    public int ordinal() { return ordinal; }

    /** The stream every op of this backend is queued on, in order: a transport orders its copies after points of it. */
    public MemorySegment stream() { return stream; }

    /** Makes this backend's device context current on the calling thread (a transport's own threads). */
    public void useOnThisThread() { use(); }

    /** Bytes of one block of one layer's keys (as many again for its values) in {@code kv}, a cache of this backend. */
    public long kvBlockBytes(KvStorage kv) {
        CudaKv c = (CudaKv) kv;
        return (long) c.layout().blockSize() * c.layout().kvDim() * c.elementBytes();
    }

    /**
     * Queues on {@code on} the copy of {@code n} blocks of layer {@code layer} into {@code out}: their keys, then their
     * values, block after block ({@code 2 * n * kvBlockBytes} bytes). {@code ids} is a device array of the n block ids.
     */
    public void gatherKv(KvStorage kv, int layer, long ids, int n, long out, MemorySegment on) { copyKv(kvGather, kv, layer, ids, n, out, on); }

    /** The inverse of {@link #gatherKv}: {@code in}'s keys and values into blocks {@code ids} of layer {@code layer}. */
    public void scatterKv(KvStorage kv, int layer, long ids, int n, long in, MemorySegment on) { copyKv(kvScatter, kv, layer, ids, n, in, on); }

    private void copyKv(MemorySegment kernel, KvStorage kv, int layer, long ids, int n, long staging, MemorySegment on) {
        if (!(kv instanceof CudaKv c) || layer < 0 || layer >= c.layout().layers() || n < 1) {
            throw new IllegalArgumentException("KV copy of " + n + " blocks of layer " + layer + " from " + kv);
        }
        use();
        long vecs = kvBlockBytes(kv) / 16;
        int grid = (int) Math.min(4L * smCount, Math.max(1, (2 * n * vecs + 255) / 256));
        cuda.launch(kernel, grid, 1, 1, 256, 1, 1, 0, on, c.keys(layer), c.values(layer), ids, n, vecs, staging);
    }

    /** Bytes of KV cache one token takes in all layers on this backend. */
    public long kvBytesPerToken(KvLayout layout) {
        return 2L * layout.layers() * layout.kvDim() * (precision == Precision.F32 ? 4 : 2);
    }

    private static CudaActivation a(Activation x) { return whole(x, "this op"); }

    private static CudaActivation view(Activation x) { return (CudaActivation) x; }

    private static CudaWeight w(Weight x) { return (CudaWeight) x; }

    // ---------------------------------------------------------------------------------------------------------
    // Step metadata
    // ---------------------------------------------------------------------------------------------------------

    /** Where each array of the current step lives on the device (int offsets into the metadata buffer). */
    private final class Step {
        final int[] tokens, positions, slots;
        final AttentionBatch batch;
        final int n, stride;
        long tokensAt, positionsAt, slotsAt, rowSeqAt, rowPosAt, tablesAt, tileRowAt, tileLenAt, tileSeqAt, decodeRowsAt;
        int tiles, decodeRows, maxDecodeContext;

        Step(int[] tokens, int[] positions, int[] slots, AttentionBatch batch, int stride, int n) {
            this.tokens = tokens;
            this.positions = positions;
            this.slots = slots;
            this.batch = batch;
            this.stride = stride;
            this.n = n;
        }
    }

    @Override
    public void beginStep(int[] tokens, int[] positions, int[] slots, AttentionBatch batch, int blockTableStride) {
        use();
        int n = tokens != null ? tokens.length : positions != null ? positions.length : slots != null ? slots.length : 0;
        if (batch != null) for (AttentionBatch.Seq s : batch.seqs()) n = Math.max(n, s.qStart() + s.qLen());
        int stride = blockTableStride;
        if (batch != null) for (AttentionBatch.Seq s : batch.seqs()) stride = Math.max(stride, s.blockTable().length);
        Step st = new Step(tokens, positions, slots, batch, Math.max(1, stride), n);
        int seqs = batch == null ? 0 : batch.seqs().size();
        boolean flash = batch != null && flashEligible(batch.headDim());
        int tiles = 0;
        if (flash) for (AttentionBatch.Seq s : batch.seqs()) if (s.qLen() > 1) tiles += Math.ceilDiv(s.qLen(), FLASH_ROWS);
        long ints = 6L * n + (long) seqs * st.stride + 3L * tiles;
        ensureMeta(ints * 4);
        if (recordings.capturing()) throw new IllegalStateException("step metadata changed while recording a graph");
        cuda.synchronize(stream); // the pinned buffer may still feed the previous step's copy
        MemorySegment h = metaHost;
        long at = 0;
        st.tokensAt = at;
        at = put(h, at, tokens, n);
        st.positionsAt = at;
        at = put(h, at, positions, n);
        st.slotsAt = at;
        at = put(h, at, slots, n);
        st.rowSeqAt = at;
        st.rowPosAt = at + n;
        st.decodeRowsAt = at + 2L * n;
        st.tablesAt = at + 3L * n;
        st.tileRowAt = st.tablesAt + (long) seqs * st.stride;
        st.tileLenAt = st.tileRowAt + tiles;
        st.tileSeqAt = st.tileLenAt + tiles;
        long end = st.tileSeqAt + tiles;
        for (long i = at; i < end; i++) h.setAtIndex(I32, i, 0);
        if (batch != null) {
            int d = 0, t = 0, maxCtx = 1;
            for (int si = 0; si < seqs; si++) {
                AttentionBatch.Seq s = batch.seqs().get(si);
                int[] table = s.blockTable();
                MemorySegment.copy(table, 0, h, I32, (st.tablesAt + (long) si * st.stride) * 4, Math.min(table.length, st.stride));
                for (int i = 0; i < s.qLen(); i++) {
                    int row = s.qStart() + i;
                    h.setAtIndex(I32, st.rowSeqAt + row, si);
                    h.setAtIndex(I32, st.rowPosAt + row, s.ctxLen() - s.qLen() + i);
                }
                if (flash && s.qLen() > 1) {
                    for (int r0 = 0; r0 < s.qLen(); r0 += FLASH_ROWS) {
                        h.setAtIndex(I32, st.tileRowAt + t, s.qStart() + r0);
                        h.setAtIndex(I32, st.tileLenAt + t, Math.min(FLASH_ROWS, s.qLen() - r0));
                        h.setAtIndex(I32, st.tileSeqAt + t, si);
                        t++;
                    }
                } else {
                    for (int i = 0; i < s.qLen(); i++) h.setAtIndex(I32, st.decodeRowsAt + d++, s.qStart() + i);
                    maxCtx = Math.max(maxCtx, s.ctxLen());
                }
            }
            st.tiles = t;
            st.decodeRows = d;
            st.maxDecodeContext = maxCtx;
        }
        cuda.copyToDeviceAsync(metaDevice, h, end * 4, stream);
        step = st;
    }

    private static long put(MemorySegment h, long at, int[] values, int n) {
        if (values != null) MemorySegment.copy(values, 0, h, I32, at * 4, values.length);
        for (long i = values == null ? 0 : values.length; i < n; i++) h.setAtIndex(I32, at + i, 0);
        return at + n;
    }

    private void ensureMeta(long bytes) {
        if (bytes <= metaCapacity) return;
        if (recordings.capturing()) throw new IllegalStateException("metadata buffer grew while recording a graph");
        cuda.synchronize(stream);
        long cap = Math.max(bytes, Math.max(1 << 20, metaCapacity * 2));
        if (metaHost != null) cuda.freeHost(metaHost);
        release(metaDevice);
        metaHost = cuda.hostAlloc(cap);
        metaDevice = malloc(cap);
        metaCapacity = cap;
        dropGraphs();
    }

    private long meta(long intOffset) { return metaDevice + intOffset * 4; }

    /** The current step if these arrays are its own; otherwise a new step made from them (ops called on their own). */
    private Step stepFor(int[] tokens, int[] positions, int[] slots, AttentionBatch batch) {
        Step s = step;
        if (s != null && (tokens == null || tokens == s.tokens) && (positions == null || positions == s.positions)
                && (slots == null || slots == s.slots) && (batch == null || batch == s.batch)) {
            return s;
        }
        beginStep(tokens, positions, slots, batch, 0);
        return step;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Ops
    // ---------------------------------------------------------------------------------------------------------

    /** TANDEM_CUDA_PROFILE=1: every op waits for the device and its time is summed by name (graphs off); printed at close. */
    private final Map<String, long[]> profile = System.getenv("TANDEM_CUDA_PROFILE") != null ? new java.util.TreeMap<>() : null;

    private long profileStart() {
        if (profile == null) return 0;
        cuda.synchronize(stream);
        return System.nanoTime();
    }

    private void profileEnd(String name, long t0) {
        if (profile == null) return;
        cuda.synchronize(stream);
        long[] v = profile.computeIfAbsent(name, k -> new long[2]);
        v[0] += System.nanoTime() - t0;
        v[1]++;
    }

    private void printProfile() {
        if (profile == null || profile.isEmpty()) return;
        long total = profile.values().stream().mapToLong(v -> v[0]).sum();
        System.err.println("CUDA op profile (each op synchronised; graphs off):");
        profile.entrySet().stream().sorted((a, b) -> Long.compare(b.getValue()[0], a.getValue()[0])).forEach(e ->
                System.err.printf("  %-48s %9.3f ms %6d calls %8.1f us/call %5.1f%%%n", e.getKey(), e.getValue()[0] / 1e6, e.getValue()[1],
                        e.getValue()[0] / 1e3 / e.getValue()[1], 100.0 * e.getValue()[0] / total));
    }

    /** A kernel of tandem_kernels.cu on this backend's stream, for the GQ4 helpers ({@link CudaGq4}). */
    void launchOnStream(String kernel, int gx, int gy, int block, Object... args) {
        use();
        launch(kernel, gx, gy, 1, block, 0, args);
    }

    /** Waits for this backend's stream. */
    void sync() {
        use();
        cuda.synchronize(stream);
    }

    CudaDriver driver() {
        use();
        return cuda;
    }

    private void launch(String kernel, int gx, int gy, int gz, int block, int shared, Object... args) {
        if (gx == 0 || gy == 0 || gz == 0) return; // nothing to do (e.g. no rows): the driver refuses an empty grid
        long t0 = profileStart();
        for (int i = 0; i < args.length; i++) {
            long off = 8L * i;
            switch (args[i]) {
                case Long l -> argValues.set(ValueLayout.JAVA_LONG, off, l);
                case Integer v -> argValues.set(ValueLayout.JAVA_INT, off, v);
                case Float f -> argValues.set(ValueLayout.JAVA_FLOAT, off, f);
                default -> throw new IllegalArgumentException("kernel argument of type " + args[i].getClass());
            }
        }
        cuda.launch(kernels.get(kernel), gx, gy, gz, block, 1, 1, shared, stream, argPointers);
        profileEnd(kernel, t0);
    }

    private static int grid(long n, int block) {
        return (int) Math.max(1, Math.min(Math.ceilDiv(n, block), 65535L * 16));
    }

    /** The bf16 mirror of x when the op feeding a bf16 GEMM left one, else converted now. */
    private long bf16Input(CudaActivation x) {
        if (x.buf.mirrorRows < x.rows) {
            launch("tdm_to_bf16", grid(x.elements(), 256), 1, 1, 256, 0, x.f32(), x.bf16(), x.elements());
            x.buf.mirrorRows = x.rows;
        }
        return x.bf16();
    }

    static void wrote(CudaActivation out, boolean mirror) {
        out.buf.mirrorRows = mirror ? out.rows : 0;
        out.buf.f32Stale = false;
    }

    @Override
    public void embed(Weight table, int[] tokens, Activation out) {
        use();
        CudaActivation o = a(out);
        Step s = stepFor(tokens, null, null, null);
        CudaWeight t = w(table);
        launch(t.dtype() == DType.BF16 ? "tdm_embed_bf16" : "tdm_embed_f32", o.rows(), 1, 1, 256, 0,
                meta(s.tokensAt), t.ptr(), o.f32(), 0L, o.cols());
        wrote(o, false);
    }

    @Override
    public void matmul(Activation x, Weight weight, Activation out) {
        use();
        CudaActivation xi = a(x), o = a(out);
        CudaWeight wt = w(weight);
        if (xi.cols() != wt.cols() || o.cols() != wt.rows() || o.rows() != xi.rows()) {
            throw new IllegalArgumentException("matmul " + xi.rows() + "x" + xi.cols() + " by " + wt.name() + " " + wt.rows() + "x" + wt.cols()
                    + " into " + o.rows() + "x" + o.cols());
        }
        long t0 = profileStart();
        if (wt.dtype() == DType.BF16 && xi.rows() <= GEMV_ROWS && wt.cols() % 8 == 0 && GEMV) {
            // Single-row products (batch-1 decode): Tandem's GEMV streams the weights at close to full bandwidth.
            launch("tdm_gemv_bf16_" + xi.rows(), Math.ceilDiv(wt.rows(), 4), 1, 1, 256, 0, wt.ptr(), xi.f32(), o.f32(), wt.rows(), wt.cols());
            profileEnd("gemv " + xi.rows() + "x" + wt.cols() + " by " + wt.rows() + "x" + wt.cols(), t0);
            wrote(o, false);
            return;
        }
        if (wt.dtype() == DType.BF16) {
            blas.matmul(wt.ptr(), CublasLt.R_16BF, bf16Input(xi), CublasLt.R_16BF, o.f32(), CublasLt.R_32F, xi.rows(), wt.rows(), wt.cols(), stream);
        } else {
            blas.matmul(wt.ptr(), CublasLt.R_32F, xi.f32(), CublasLt.R_32F, o.f32(), CublasLt.R_32F, xi.rows(), wt.rows(), wt.cols(), stream);
        }
        profileEnd("gemm " + xi.rows() + "x" + wt.cols() + " by " + wt.rows() + "x" + wt.cols(), t0);
        wrote(o, false);
    }

    @Override
    public void addBias(Activation x, Weight bias) {
        use();
        CudaActivation xi = a(x);
        launch("tdm_add_bias", grid(xi.elements(), 256), 1, 1, 256, 0, xi.f32(), w(bias).ptr(), xi.cols(), xi.elements());
        wrote(xi, false);
    }

    @Override
    public void rmsNorm(Activation x, Weight gamma, float eps, Activation out) {
        use();
        CudaActivation xi = a(x), o = a(out);
        launch("tdm_rmsnorm", o.rows(), 1, 1, normThreads(o.cols()), 0, 0L, xi.f32(), w(gamma).ptr(), o.f32(), o.bf16(), o.cols(), eps);
        wrote(o, true);
    }

    @Override
    public void addRmsNorm(Activation acc, Activation x, Weight gamma, float eps, Activation out) {
        use();
        CudaActivation ac = a(acc), xi = a(x), o = a(out);
        launch("tdm_rmsnorm", o.rows(), 1, 1, normThreads(o.cols()), 0, ac.f32(), xi.f32(), w(gamma).ptr(), o.f32(), o.bf16(), o.cols(), eps);
        wrote(ac, false);
        wrote(o, true);
    }

    @Override
    public void layerNorm(Activation x, Weight gamma, Weight beta, float eps, Activation out) {
        use();
        CudaActivation xi = a(x), o = a(out);
        launch("tdm_layernorm", o.rows(), 1, 1, normThreads(o.cols()), 0, 0L, xi.f32(), w(gamma).ptr(), w(beta).ptr(), o.f32(), o.bf16(),
                o.cols(), eps);
        wrote(o, true);
    }

    @Override
    public void addLayerNorm(Activation acc, Activation x, Weight gamma, Weight beta, float eps, Activation out) {
        use();
        CudaActivation ac = a(acc), xi = a(x), o = a(out);
        launch("tdm_layernorm", o.rows(), 1, 1, normThreads(o.cols()), 0, ac.f32(), xi.f32(), w(gamma).ptr(), w(beta).ptr(), o.f32(), o.bf16(),
                o.cols(), eps);
        wrote(ac, false);
        wrote(o, true);
    }

    @Override
    public void relu(Activation x) {
        use();
        CudaActivation xi = a(x);
        launch("tdm_add_bias_relu", grid(xi.elements(), 256), 1, 1, 256, 0, xi.f32(), 0L, xi.bf16(), xi.cols(), xi.elements());
        wrote(xi, true);
    }

    /** The bias, the ReLU and the bf16 copy the next GEMM reads, in one pass. */
    @Override
    public void addBiasRelu(Activation x, Weight bias) {
        use();
        CudaActivation xi = a(x);
        launch("tdm_add_bias_relu", grid(xi.elements(), 256), 1, 1, 256, 0, xi.f32(), w(bias).ptr(), xi.bf16(), xi.cols(), xi.elements());
        wrote(xi, true);
    }

    @Override
    public void addPositionEmbedding(Activation x, Weight table, int[] positions, int offset) {
        use();
        CudaActivation xi = a(x);
        CudaWeight t = w(table);
        for (int i = 0; i < xi.rows(); i++) {
            int row = positions[i] + offset;
            if (row < 0 || row >= t.rows()) throw new IllegalArgumentException("position " + positions[i] + " outside the " + (t.rows() - offset) + " positions of " + t.name());
        }
        Step s = stepFor(null, positions, null, null);
        launch(t.dtype() == DType.BF16 ? "tdm_add_position_bf16" : "tdm_add_position_f32", xi.rows(), 1, 1, 256, 0,
                xi.f32(), meta(s.positionsAt), t.ptr(), offset, xi.cols());
        wrote(xi, false);
    }

    private static int normThreads(int cols) { return cols >= 2048 ? 1024 : cols >= 512 ? 512 : 256; }

    @Override
    public void add(Activation acc, Activation x) {
        use();
        CudaActivation ac = a(acc);
        launch("tdm_add", grid(ac.elements(), 256), 1, 1, 256, 0, ac.f32(), a(x).f32(), ac.elements());
        wrote(ac, false);
    }

    private long[] ropeTable(Rope rope) {
        return ropeTables.computeIfAbsent(rope, r -> {
            float[] cos = r.cosTable(), sin = r.sinTable();
            long c = malloc(4L * cos.length), s = malloc(4L * sin.length);
            try (Arena ar = Arena.ofConfined()) {
                cuda.copyToDevice(c, ar.allocateFrom(ValueLayout.JAVA_FLOAT, cos), 4L * cos.length);
                cuda.copyToDevice(s, ar.allocateFrom(ValueLayout.JAVA_FLOAT, sin), 4L * sin.length);
            }
            return new long[] {c, s};
        });
    }

    @Override
    public void rope(Activation x, int heads, int[] positions, Rope rope) {
        use();
        for (int p : positions) rope.checkPosition(p);
        CudaActivation xi = a(x);
        long[] t = ropeTable(rope);
        Step s = stepFor(null, positions, null, null);
        launch("tdm_rope", xi.rows(), 1, 1, 128, 0, xi.f32(), heads, rope.headDim(), rope.style() == Rope.Style.INTERLEAVED ? 1 : 0,
                meta(s.positionsAt), t[0], t[1]);
        wrote(xi, false);
    }

    @Override
    public void ropeWriteKv(Activation q, Activation k, Activation v, int heads, int kvHeads, int[] positions, Rope rope,
                            KvStorage kv, int layer, int[] slots) {
        use();
        CudaActivation qa = view(q), ka = view(k), va = view(v);
        if (ka.ld() != va.ld()) throw new IllegalArgumentException("k and v rows must have the same stride");
        CudaKv c = (CudaKv) kv;
        long[] t = ropeTable(rope);
        Step s = stepFor(null, positions, slots, null);
        launch(c.elementBytes() == 2 ? "tdm_rope_write_kv_bf16" : "tdm_rope_write_kv_f32", qa.rows(), 1, 1, 128, 0,
                qa.f32(), ka.f32(), va.f32(), qa.ld(), ka.ld(), heads, kvHeads, rope.headDim(), rope.style() == Rope.Style.INTERLEAVED ? 1 : 0, 1,
                meta(s.positionsAt), meta(s.slotsAt), t[0], t[1], c.keys(layer), c.values(layer));
        wrote(qa, false);
        wrote(ka, false);
    }

    @Override
    public void swiglu(Activation gate, Activation up, Activation out) {
        use();
        CudaActivation o = a(out), g = view(gate), u = view(up);
        if (g.ld() != u.ld()) throw new IllegalArgumentException("gate and up rows must have the same stride");
        launch("tdm_swiglu", grid(o.elements(), 256), 1, 1, 256, 0, g.f32(), u.f32(), o.f32(), o.bf16(), o.cols(), g.ld(), o.elements());
        wrote(o, true);
    }

    @Override
    public void writeKv(KvStorage kv, int layer, Activation k, Activation v, int[] slots) {
        use();
        CudaActivation ka = view(k), va = view(v);
        if (ka.ld() != va.ld()) throw new IllegalArgumentException("k and v rows must have the same stride");
        CudaKv c = (CudaKv) kv;
        Step s = stepFor(null, null, slots, null);
        KvLayout l = c.layout();
        launch(c.elementBytes() == 2 ? "tdm_rope_write_kv_bf16" : "tdm_rope_write_kv_f32", ka.rows(), 1, 1, 128, 0,
                0L, ka.f32(), va.f32(), 0, ka.ld(), 0, l.kvHeads(), l.headDim(), 0, 0, 0L, meta(s.slotsAt), 0L, 0L, c.keys(layer), c.values(layer));
    }

    @Override
    public void swigluMatmul(Activation gate, Activation up, Activation scratch, Weight weight, Activation out) {
        use();
        CudaActivation g = view(gate), u = view(up), o = a(out);
        CudaWeight wt = w(weight);
        if (wt.dtype() == DType.BF16 && g.rows() <= GEMV_ROWS && wt.cols() % 8 == 0 && g.ld() == u.ld() && g.ld() % 4 == 0 && g.offset() % 4 == 0
                && u.offset() % 4 == 0 && GEMV) {
            // Decode: the down projection computes silu(gate) * up as it reads them; the product is never stored.
            long t0 = profileStart();
            launch("tdm_gemv_swiglu_bf16_" + g.rows(), Math.ceilDiv(wt.rows(), 4), 1, 1, 256, 0, wt.ptr(), g.f32(), u.f32(), g.ld(), o.f32(),
                    wt.rows(), wt.cols());
            profileEnd("gemv+swiglu " + g.rows() + "x" + wt.cols() + " by " + wt.rows() + "x" + wt.cols(), t0);
            wrote(o, false);
            return;
        }
        // Only the product's bf16 copy feeds the (bf16) GEMM: skip writing its f32 values.
        CudaActivation sc = a(scratch);
        if (wt.dtype() == DType.BF16 && sc.rows() > 8) {
            if (g.ld() != u.ld()) throw new IllegalArgumentException("gate and up rows must have the same stride");
            launch("tdm_swiglu", grid(sc.elements(), 256), 1, 1, 256, 0, g.f32(), u.f32(), 0L, sc.bf16(), sc.cols(), g.ld(), sc.elements());
            sc.buf.mirrorRows = sc.rows();
            sc.buf.f32Stale = true;
        } else {
            swiglu(gate, up, scratch);
        }
        matmul(scratch, weight, out);
    }

    private boolean flashEligible(int headDim) {
        return precision == Precision.BF16 && (headDim == 64 || headDim == 128);
    }

    /** flash2's layout: padded Q and two stages of padded K and V (bf16), then the rows' positions. */
    private static int flash2SharedBytes(int hd) {
        return 2 * 5 * FLASH_ROWS * (hd + 8) + 4 * FLASH_ROWS;
    }

    @Override
    public void attention(Activation q, KvStorage kv, int layer, AttentionBatch batch, Activation out) {
        use();
        CudaActivation qa = view(q), o = a(out);
        CudaKv c = (CudaKv) kv;
        if (batch.headDim() > 256 || batch.headDim() % 4 != 0) {
            throw new IllegalArgumentException("head_dim " + batch.headDim() + " is not supported on CUDA (a multiple of 4 up to 256)");
        }
        Step s = stepFor(null, null, null, batch);
        int hd = batch.headDim(), heads = batch.heads(), bs = c.layout().blockSize();
        if (s.tiles > 0) {
            launch("tdm_flash2_prefill_" + hd, s.tiles, heads, 1, 128, flash2SharedBytes(hd), qa.f32(), qa.ld(), c.keys(layer), c.values(layer),
                    meta(s.tileRowAt), meta(s.tileLenAt), meta(s.tileSeqAt), meta(s.rowPosAt), meta(s.tablesAt), s.stride, bs,
                    heads, batch.kvHeads(), batch.scale(), o.f32(), o.bf16());
        }
        if (s.decodeRows > 0) {
            // A replayed step must not depend on this step's lengths: size the split for its context bucket then.
            int maxCtx = recordings.replaying() ? s.stride * bs : s.maxDecodeContext;
            int group = heads / batch.kvHeads();
            if (group > 8) throw new IllegalArgumentException("a GQA group of " + group + " query heads per KV head is not supported on CUDA (at most 8)");
            boolean tiled = TILED_DECODE && c.elementBytes() == 2 && (hd == 64 || hd == 128);
            int splits, chunk;
            if (tiled) {
                // Splits of whole tiles, enough for 16 blocks per SM were every row maxCtx long: rows are shorter on
                // average, and a split past a row's context returns at once.
                splits = Math.clamp(Math.ceilDiv(16L * smCount, (long) s.decodeRows * batch.kvHeads()), 1, Math.ceilDiv(maxCtx, DECODE_TILE));
                chunk = Math.ceilDiv(Math.ceilDiv(maxCtx, splits), DECODE_TILE) * DECODE_TILE;
                splits = Math.ceilDiv(maxCtx, chunk);
            } else {
                // Enough blocks to fill the GPU (a batch of one sequence has only kvHeads of them otherwise), at least
                // 32 keys per split.
                splits = Math.clamp(Math.ceilDiv(4L * smCount, (long) s.decodeRows * batch.kvHeads()), 1, Math.max(1, Math.ceilDiv(maxCtx, 32)));
                chunk = Math.ceilDiv(maxCtx, splits);
            }
            long need = (long) s.decodeRows * heads * splits;
            ensurePartials(need, hd);
            String kernel = tiled ? "tdm_attn_decode_g" + group + "_" + hd
                    : "tdm_attn_split_" + (c.elementBytes() == 2 ? "bf16" : "f32") + "_g" + group + "_v" + (hd <= 128 ? 1 : 2);
            launch(kernel, s.decodeRows, batch.kvHeads(), splits, 128, 0, qa.f32(), qa.ld(), c.keys(layer), c.values(layer), meta(s.decodeRowsAt),
                    meta(s.rowSeqAt), meta(s.rowPosAt), meta(s.tablesAt), s.stride, bs, heads, batch.kvHeads(), hd, batch.scale(),
                    chunk, partO, partML, o.f32(), o.bf16());
            if (splits > 1) {
                launch("tdm_attn_combine", s.decodeRows, heads, 1, Math.min(256, Math.max(32, hd)), 0, meta(s.decodeRowsAt), meta(s.rowPosAt),
                        chunk, partO, partML, splits, heads, hd, o.f32(), o.bf16());
            }
        }
        wrote(o, true);
    }

    private void ensurePartials(long slots, int hd) {
        long bytes = slots * (hd + 2L) * 4;
        if (bytes <= partCapacity) return;
        if (recordings.capturing()) throw new IllegalStateException("attention partials grew while recording a graph");
        cuda.synchronize(stream);
        release(partO);
        release(partML);
        long cap = Math.max(bytes, 64L << 20);
        partO = malloc(cap);
        partML = malloc(cap / (hd + 2L) * 2 + 256);
        partCapacity = cap;
        dropGraphs();
    }

    @Override
    public void gatherRows(Activation x, int[] rows, Activation out) {
        use();
        CudaActivation o = a(out);
        long dev = ints(rows);
        launch("tdm_gather_rows", rows.length, 1, 1, 256, 0, a(x).f32(), dev, o.f32(), o.bf16(), o.cols());
        wrote(o, true);
    }

    private long ints(int[] values) {
        if (isIdentity(values)) return identity(values.length);
        if (recordings.capturing()) throw new IllegalStateException("non-identity row list while recording a graph");
        long need = 4L * values.length;
        ensureScratchInts(need);
        try (Arena ar = Arena.ofConfined()) {
            cuda.synchronize(stream); // the previous user of the scratch buffer may still be running
            cuda.copyToDevice(scratchInts, ar.allocateFrom(I32, values), need);
        }
        return scratchInts;
    }

    private static boolean isIdentity(int[] v) {
        for (int i = 0; i < v.length; i++) if (v[i] != i) return false;
        return true;
    }

    private long identityPtr;
    private int identityLength;

    private long identity(int n) {
        if (n > identityLength) {
            if (recordings.capturing()) throw new IllegalStateException("identity rows grew while recording a graph");
            int len = Math.max(n, 4096);
            int[] v = new int[len];
            for (int i = 0; i < len; i++) v[i] = i;
            long p = malloc(4L * len);
            try (Arena ar = Arena.ofConfined()) {
                cuda.copyToDevice(p, ar.allocateFrom(I32, v), 4L * len);
            }
            identityPtr = p;
            identityLength = len;
        }
        return identityPtr;
    }

    @Override
    public void read(Activation x, int row, float[] dst) {
        use();
        CudaActivation xi = a(x);
        if (row < 0 || row >= xi.rows()) throw new IndexOutOfBoundsException("row " + row + " of " + xi.rows());
        if (xi.buf.f32Stale) throw new IllegalStateException("this activation holds only a bf16 GEMM input");
        long bytes = 4L * xi.cols();
        MemorySegment h = host(bytes);
        cuda.copyToHostAsync(h, xi.f32() + (long) row * bytes, bytes, stream);
        cuda.synchronize(stream);
        MemorySegment.copy(h, ValueLayout.JAVA_FLOAT, 0, dst, 0, xi.cols());
    }

    @Override
    public void argmax(Activation logits, int[] out) {
        use();
        CudaActivation l = a(logits);
        if (out.length > l.rows()) throw new IllegalArgumentException(out.length + " results for " + l.rows() + " rows");
        if (out.length == 0) return;
        ensureScratchInts(4L * out.length);
        launch("tdm_argmax", out.length, 1, 1, 1024, 0, l.f32(), l.cols(), scratchInts);
        MemorySegment h = host(4L * out.length);
        cuda.copyToHostAsync(h, scratchInts, 4L * out.length, stream);
        cuda.synchronize(stream);
        MemorySegment.copy(h, I32, 0, out, 0, out.length);
    }

    @Override
    public boolean samplesOnDevice() { return true; }

    @Override
    public void sample(Activation logits, float[] temperature, int[] topK, float[] topP, float[] minP, float[] uniform, int[] out) {
        use();
        CudaActivation l = a(logits);
        int n = out.length;
        if (n > l.rows()) throw new IllegalArgumentException(n + " results for " + l.rows() + " rows");
        if (n == 0) return;
        MemorySegment h = host(Math.max(20L * n, 4L * n));
        for (int r = 0; r < n; r++) {
            h.setAtIndex(ValueLayout.JAVA_FLOAT, 5L * r, temperature[r]);
            h.setAtIndex(ValueLayout.JAVA_FLOAT, 5L * r + 1, topK[r]);
            h.setAtIndex(ValueLayout.JAVA_FLOAT, 5L * r + 2, topP[r]);
            h.setAtIndex(ValueLayout.JAVA_FLOAT, 5L * r + 3, minP[r]);
            h.setAtIndex(ValueLayout.JAVA_FLOAT, 5L * r + 4, uniform[r]);
        }
        ensureScratchInts(20L * n + 4L * n);
        long params = scratchInts, ids = scratchInts + 20L * n;
        cuda.copyToDeviceAsync(params, h, 20L * n, stream);
        launch("tdm_sample", n, 1, 1, 1024, 0, l.f32(), l.cols(), params, ids);
        cuda.copyToHostAsync(h, ids, 4L * n, stream);
        cuda.synchronize(stream);
        MemorySegment.copy(h, I32, 0, out, 0, n);
        wrote(l, false);
    }

    private void ensureScratchInts(long need) {
        if (need <= scratchIntsCapacity) return;
        cuda.synchronize(stream);
        release(scratchInts);
        scratchIntsCapacity = Math.max(need, 1 << 16);
        scratchInts = malloc(scratchIntsCapacity);
    }

    private MemorySegment host(long bytes) {
        if (bytes > hostRow.byteSize()) {
            cuda.synchronize(stream);
            cuda.freeHost(hostRow);
            hostRow = cuda.hostAlloc(Math.max(bytes, 2 * hostRow.byteSize()));
        }
        return hostRow;
    }

    // ---------------------------------------------------------------------------------------------------------
    // CUDA graphs for decode steps
    // ---------------------------------------------------------------------------------------------------------

    @Override
    public int replayRows(int n) {
        if (!graphs) return 0;
        for (int size : GRAPH_SIZES) if (size >= n) return size;
        return 0;
    }

    /** Replayable steps go through {@link StepGraphs}: run eagerly once, recorded once, replayed after. */
    @Override
    public void replay(Object owner, int rows, Runnable stepOps) {
        use();
        if (profile != null) {
            stepOps.run();
            return;
        }
        // The step's block-table stride bounds its contexts: launch shapes recorded for it serve every such step.
        recordings.run(new StepGraphs.Key(owner, rows, step.stride), stepOps);
    }

    private void dropGraphs() { recordings.clear(); }

    /** Clears the per-op profile (TANDEM_CUDA_PROFILE), so that a benchmark can leave warm-up out of it. */
    public void resetProfile() {
        if (profile != null) profile.clear();
    }

    /** Waits for the device to finish the work issued so far (benchmarks time steps with it). */
    public void synchronize() {
        use();
        cuda.synchronize(stream);
    }

    // Package-level access for CudaOffload (weight streaming and host transfers of offloaded runs).

    MemorySegment computeStream() { return stream; }

    void makeCurrent() { use(); }

    long allocate(long bytes) { return malloc(bytes); }

    void free(long ptr) { release(ptr); }

    /** Device bytes this backend holds (weights, activations, caches, scratch). */
    public long allocatedBytes() {
        return allocatedBytes;
    }

    /** Free and total device memory in bytes. */
    public long[] memoryInfo() {
        use();
        return cuda.memoryInfo();
    }

    @Override
    public void close() {
        use();
        cuda.synchronize(stream);
        printProfile();
        dropGraphs();
        for (long p : allocations) cuda.free(p);
        allocations.clear();
        if (metaHost != null) cuda.freeHost(metaHost);
        cuda.freeHost(hostRow);
        blas.close();
        kernels.unload();
        cuda.destroyStream(stream);
        arena.close();
    }
}
