package dev.tandem.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * cuBLASLt matrix products in Tandem's row-major convention: out[n, rows] = x[n, cols] * w[rows, cols]^T with
 * fp32 accumulation. cuBLASLt is column-major, so the product is issued as out^T = w * x^T (w read transposed).
 * One handle per instance, with a plan (descriptors and the heuristic's algorithm) cached per product shape; use it
 * from the thread that owns the CUDA context.
 */
public final class CublasLt implements AutoCloseable {
    /** cudaDataType values. */
    public static final int R_32F = 0, R_16F = 2, R_16BF = 14;
    private static final int COMPUTE_32F = 68;
    private static final int DESC_TRANSA = 3, DESC_TRANSB = 4, OP_N = 0, OP_T = 1, PREF_MAX_WORKSPACE = 1;
    /** cublasLtMatmulHeuristicResult_t: algo (64 bytes), workspaceSize, state, wavesCount, reserved[4]. */
    private static final long HEURISTIC_BYTES = 96;

    private static volatile Lib lib;
    private final MemorySegment handle;
    private final CudaDriver cuda;
    private final long workspace;
    private final MemorySegment workspaceSegment;
    private final long workspaceBytes = 32L << 20;

    private record Lib(MethodHandle create, MethodHandle destroy, MethodHandle descCreate, MethodHandle descDestroy, MethodHandle descSet,
                       MethodHandle layoutCreate, MethodHandle layoutDestroy, MethodHandle prefCreate, MethodHandle prefDestroy,
                       MethodHandle prefSet, MethodHandle heuristic, MethodHandle matmul, MethodHandle statusString) {}

    private static Lib lib() {
        if (lib == null) {
            synchronized (CublasLt.class) {
                if (lib == null) {
                    SymbolLookup l = NativeLibraries.open("cuBLASLt (libcublasLt)", List.of("libcublasLt.so", "libcublasLt.so.13", "libcublasLt.so.12"));
                    Linker k = Linker.nativeLinker();
                    lib = new Lib(
                            h(k, l, "cublasLtCreate", ADDRESS),
                            h(k, l, "cublasLtDestroy", ADDRESS),
                            h(k, l, "cublasLtMatmulDescCreate", ADDRESS, JAVA_INT, JAVA_INT),
                            h(k, l, "cublasLtMatmulDescDestroy", ADDRESS),
                            h(k, l, "cublasLtMatmulDescSetAttribute", ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG),
                            h(k, l, "cublasLtMatrixLayoutCreate", ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG),
                            h(k, l, "cublasLtMatrixLayoutDestroy", ADDRESS),
                            h(k, l, "cublasLtMatmulPreferenceCreate", ADDRESS),
                            h(k, l, "cublasLtMatmulPreferenceDestroy", ADDRESS),
                            h(k, l, "cublasLtMatmulPreferenceSetAttribute", ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG),
                            h(k, l, "cublasLtMatmulAlgoGetHeuristic", ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS),
                            h(k, l, "cublasLtMatmul", ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS,
                                    JAVA_LONG, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS),
                            k.downcallHandle(l.find("cublasLtGetStatusString").orElseThrow(), FunctionDescriptor.of(ADDRESS, JAVA_INT)));
                }
            }
        }
        return lib;
    }

    private static MethodHandle h(Linker k, SymbolLookup l, String name, java.lang.foreign.MemoryLayout... args) {
        return k.downcallHandle(l.find(name).orElseThrow(() -> new CudaException("libcublasLt exports no " + name)), FunctionDescriptor.of(JAVA_INT, args));
    }

    private static void check(String call, Object result) {
        int r = (int) result;
        if (r == 0) return;
        String text;
        try {
            text = ((MemorySegment) lib().statusString().invokeExact(r)).reinterpret(256).getString(0);
        } catch (Throwable t) {
            text = "unknown";
        }
        throw new CudaException(call, r, text);
    }

    private static Object call(MethodHandle h, Object... args) {
        try {
            return h.invokeWithArguments(args);
        } catch (CudaException e) {
            throw e;
        } catch (Throwable t) {
            throw new CudaException("cuBLASLt call failed: " + t);
        }
    }

    /** A handle with a 32 MiB device workspace; the calling thread must have a current CUDA context. */
    public CublasLt(CudaDriver cuda) {
        this.cuda = cuda;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check("cublasLtCreate", call(lib().create(), out));
            handle = out.get(ADDRESS, 0);
        }
        workspace = cuda.malloc(workspaceBytes);
        workspaceSegment = MemorySegment.ofAddress(workspace);
    }

    /** How many of the heuristic's algorithms are timed on the first product of a shape (the fastest is kept). */
    private static final int CANDIDATES = 16;
    /**
     * Products of up to this many rows (decode batches up to 256 sequences, where the heuristic's first choice is often
     * not the fastest) are timed; larger ones take the heuristic's choice. A server meets almost every row count up to its step budget once
     * (prompt chunks of any length), and timing 16 candidates on a 1,000-row product costs 100+ ms: a new shape would
     * stall the step that meets it (TANDEM_GEMM_TUNE_ROWS overrides; with {@link #tuneOnly} only the listed counts up to it).
     */
    static final int TUNE_MAX_ROWS = tuneMaxRows(System.getenv("TANDEM_GEMM_TUNE_ROWS"));

    private static int tuneMaxRows(String v) {
        if (v == null || v.isBlank()) return 256;
        try {
            return Integer.parseInt(v.strip());
        } catch (NumberFormatException e) {
            System.err.println("TANDEM_GEMM_TUNE_ROWS must be a whole number of rows, got '" + v + "': using 256");
            return 256;
        }
    }

    /** Descriptors, layouts and the chosen algorithm of one product shape, made once and reused. */
    private static final class Plan {
        final MemorySegment desc, wl, xl, ol;
        final MemorySegment[] candidates;
        MemorySegment algo;

        Plan(MemorySegment desc, MemorySegment wl, MemorySegment xl, MemorySegment ol, MemorySegment[] candidates) {
            this.desc = desc;
            this.wl = wl;
            this.xl = xl;
            this.ol = ol;
            this.candidates = candidates;
            this.algo = candidates.length == 1 ? candidates[0] : null;
        }
    }

    private record Shape(int n, int rows, int cols, int wType, int xType, int outType) {}

    /** Row counts whose products are timed (up to TUNE_MAX_ROWS); null: every count up to it. */
    private java.util.BitSet tunedRows;

    /**
     * Times candidates only for products of these row counts: the decode batch sizes a backend pads its steps to, met
     * again and again. Other row counts (prompt chunks and mixed steps, which take almost every count below the step
     * budget once each) take the heuristic's choice: timing 16 candidates for each new count cost that step 30-100 ms
     * at an 8B model's shapes, which the first short prompt of each new length paid in its time to first token.
     */
    public void tuneOnly(int... rowCounts) {
        java.util.BitSet b = new java.util.BitSet();
        for (int n : rowCounts) b.set(n);
        tunedRows = b;
    }

    private boolean tunes(int n) { return n <= TUNE_MAX_ROWS && (tunedRows == null || tunedRows.get(n)); }

    private final java.util.Map<Shape, Plan> plans = new java.util.HashMap<>();
    /** Plans live as long as the handle; alpha and beta are constants. */
    private final Arena planArena = Arena.ofShared();
    private final MemorySegment alpha = planArena.allocateFrom(ValueLayout.JAVA_FLOAT, 1f), beta = planArena.allocateFrom(ValueLayout.JAVA_FLOAT, 0f);

    /**
     * out[n, rows] = x[n, cols] * w[rows, cols]^T, row-major, on the default stream. {@code wType} / {@code xType} /
     * {@code outType} are cudaDataType values (R_16BF, R_16F, R_32F); accumulation is fp32.
     */
    public void matmul(long w, int wType, long x, int xType, long out, int outType, int n, int rows, int cols) {
        matmul(w, wType, x, xType, out, outType, n, rows, cols, MemorySegment.NULL);
    }

    /** As {@link #matmul(long, int, long, int, long, int, int, int, int)}, on {@code stream} (capturable into a graph). */
    public void matmul(long w, int wType, long x, int xType, long out, int outType, int n, int rows, int cols, MemorySegment stream) {
        Shape shape = new Shape(n, rows, cols, wType, xType, outType);
        Plan p = plans.computeIfAbsent(shape, this::plan);
        if (p.algo == null) p.algo = tunes(n) ? fastest(p, shape, w, x, out, stream) : p.candidates[0];
        run(p, p.algo, w, x, out, stream, n, rows, cols);
    }

    private void run(Plan p, MemorySegment algo, long w, long x, long out, MemorySegment stream, int n, int rows, int cols) {
        int r;
        try {
            r = (int) lib().matmul().invokeExact(handle, p.desc, alpha, w, p.wl, x, p.xl, beta, out, p.ol, out, p.ol, algo,
                    workspaceSegment, workspaceBytes, stream);
        } catch (Throwable t) {
            throw new CudaException("cuBLASLt call failed: " + t);
        }
        check("cublasLtMatmul(" + n + "x" + cols + " by " + rows + "x" + cols + ")", r);
    }

    /**
     * Times each candidate algorithm on the real operands (the heuristic's first choice is often not the fastest for
     * skinny decode products) and returns the fastest. Runs once per shape, never inside a graph capture (the
     * backend's first step of each shape runs eagerly).
     */
    private MemorySegment fastest(Plan p, Shape s, long w, long x, long out, MemorySegment stream) {
        MemorySegment best = p.candidates[0];
        long bestNs = Long.MAX_VALUE;
        for (MemorySegment algo : p.candidates) {
            try {
                run(p, algo, w, x, out, stream, s.n(), s.rows(), s.cols());
                for (int round = 0; round < 2; round++) { // best of two rounds of five: clocks and caches vary
                    cuda.synchronize(stream);
                    long t0 = System.nanoTime();
                    for (int i = 0; i < 5; i++) run(p, algo, w, x, out, stream, s.n(), s.rows(), s.cols());
                    cuda.synchronize(stream);
                    long ns = System.nanoTime() - t0;
                    if (ns < bestNs) {
                        bestNs = ns;
                        best = algo;
                    }
                }
            } catch (CudaException e) {
                // an algorithm the heuristic offered but that cannot run these operands: skip it
            }
        }
        return best;
    }

    private Plan plan(Shape s) {
        Lib l = lib();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check("cublasLtMatmulDescCreate", call(l.descCreate(), p, COMPUTE_32F, R_32F));
            MemorySegment desc = p.get(ADDRESS, 0);
            check("cublasLtMatmulDescSetAttribute(TRANSA)", call(l.descSet(), desc, DESC_TRANSA, a.allocateFrom(JAVA_INT, OP_T), 4L));
            check("cublasLtMatmulDescSetAttribute(TRANSB)", call(l.descSet(), desc, DESC_TRANSB, a.allocateFrom(JAVA_INT, OP_N), 4L));
            // Column-major views: w is cols x rows (ld cols), x is cols x n (ld cols), out is rows x n (ld rows).
            check("cublasLtMatrixLayoutCreate(w)", call(l.layoutCreate(), p, s.wType(), (long) s.cols(), (long) s.rows(), (long) s.cols()));
            MemorySegment wl = p.get(ADDRESS, 0);
            check("cublasLtMatrixLayoutCreate(x)", call(l.layoutCreate(), p, s.xType(), (long) s.cols(), (long) s.n(), (long) s.cols()));
            MemorySegment xl = p.get(ADDRESS, 0);
            check("cublasLtMatrixLayoutCreate(out)", call(l.layoutCreate(), p, s.outType(), (long) s.rows(), (long) s.n(), (long) s.rows()));
            MemorySegment ol = p.get(ADDRESS, 0);
            check("cublasLtMatmulPreferenceCreate", call(l.prefCreate(), p));
            MemorySegment pref = p.get(ADDRESS, 0);
            try {
                check("cublasLtMatmulPreferenceSetAttribute", call(l.prefSet(), pref, PREF_MAX_WORKSPACE, a.allocateFrom(JAVA_LONG, workspaceBytes), 8L));
                MemorySegment results = a.allocate(HEURISTIC_BYTES * CANDIDATES, 8);
                MemorySegment count = a.allocate(JAVA_INT);
                check("cublasLtMatmulAlgoGetHeuristic", call(l.heuristic(), handle, desc, wl, xl, ol, ol, pref, CANDIDATES, results, count));
                if (count.get(JAVA_INT, 0) == 0) {
                    throw new CudaException("cuBLASLt has no algorithm for " + s.n() + "x" + s.cols() + " by " + s.rows() + "x" + s.cols()
                            + " (types " + s.wType() + "/" + s.xType() + "/" + s.outType() + ")");
                }
                MemorySegment[] algos = new MemorySegment[count.get(JAVA_INT, 0)];
                for (int i = 0; i < algos.length; i++) {
                    algos[i] = planArena.allocate(64, 8); // cublasLtMatmulAlgo_t, the first field of each result
                    MemorySegment.copy(results, i * HEURISTIC_BYTES, algos[i], 0, 64);
                }
                return new Plan(desc, wl, xl, ol, algos);
            } finally {
                call(l.prefDestroy(), pref);
            }
        }
    }

    @Override
    public void close() {
        Lib l = lib();
        for (Plan p : plans.values()) {
            call(l.layoutDestroy(), p.ol);
            call(l.layoutDestroy(), p.xl);
            call(l.layoutDestroy(), p.wl);
            call(l.descDestroy(), p.desc);
        }
        plans.clear();
        planArena.close();
        cuda.free(workspace);
        check("cublasLtDestroy", call(lib().destroy(), handle));
    }
}
