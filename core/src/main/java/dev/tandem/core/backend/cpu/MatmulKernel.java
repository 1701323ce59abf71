package dev.tandem.core.backend.cpu;

import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * out = x * W^T for one weight format. Every format packs W once into the same shape of layout: rows in groups
 * of {@link #LANES} (one float vector, zero-padded at the end), and within a group the columns one after the
 * other, each column holding the group's LANES weights of that input. A kernel then computes LANES outputs at
 * once as a chain of vector FMAs, acc += w[:, c] * broadcast(x[c]), and never reduces across lanes.
 *
 * <p><b>Batch invariance.</b> Each output element (token t, row r) is lane r%LANES of one FMA chain over the
 * columns in a fixed order, with the same block structure and constants whatever the batch: {@link #gemv}
 * (one token, several groups interleaved for instruction-level parallelism) and {@link #gemm} (a tile of
 * {@link #TILE} tokens times two groups, so each decoded weight vector serves four tokens) issue, per
 * element, the identical sequence of IEEE operations. Interleaving other groups or tokens, the tile position,
 * padding tokens and the thread that runs a task change nothing. No kernel may use reduceLanes (its order
 * differs between interpreter and JIT) or any other cross-lane reduction in the dot product.
 *
 * <p><b>JIT constraints</b> (each cost a 10-100x slowdown when broken): kernel bodies call Vector API methods
 * (force-inlined) rather than our own vector helpers, which C2 stops inlining past a node budget, boxing the
 * vectors they take or return; and they are loops with small bodies rather than long unrolled sequences,
 * because C1 gives up on big Vector API methods ("out of virtual registers"), and a method that C1 compiled
 * at tier 2 but cannot compile at tier 3 never reaches C2. C2 unrolls the loops itself.
 */
abstract class MatmulKernel {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED.length() >= 8
            ? FloatVector.SPECIES_PREFERRED : FloatVector.SPECIES_256;
    /** Rows per packed group: one float vector of outputs. */
    static final int LANES = F.length();
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Tokens per GEMM tile. */
    static final int TILE = 4;

    private static final MatmulKernel F32 = new F32Kernel(), F16 = new F16Kernel(), BF16 = new Bf16Kernel(),
            Q8_0 = new Q8Kernel(), Q4_0 = new Q4Kernel();

    static MatmulKernel of(DType type) {
        return switch (type) {
            case F32 -> F32;
            case F16 -> F16;
            case BF16 -> BF16;
            case Q8_0 -> Q8_0;
            case Q4_0 -> Q4_0;
        };
    }

    static int groups(int rows) { return (rows + LANES - 1) / LANES; }

    /** Bytes of the packed layout. */
    abstract long packedBytes(int rows, int cols);

    /** Writes the packed layout of t into dst (zeroed, packedBytes long, 64-byte aligned). */
    abstract void pack(Tensor t, MemorySegment dst);

    /** Whether the kernel needs {@link #blockSums} of x (Q4_0 folds its -8 offset out of the inner loop). */
    boolean needsBlockSums() { return false; }

    /** Rewrites a token's activations, after their block sums, into what gemv/gemm expect; exact. */
    void prepare(float[] x, int off, int cols) {}

    /**
     * One token. For every group g in [g0, g1): out[outOff + 4 * (g * LANES + r)] = (W x)[g * LANES + r] for
     * the rows below {@code rows}. x holds the token's cols values; xs its block sums when needed.
     */
    abstract void gemv(MemorySegment w, int rows, int cols, float[] x, float[] xs, MemorySegment out, long outOff,
                       int g0, int g1);

    /**
     * A tile of TILE tokens, the first ntok real. x is packed as xp[xpOff + c * TILE + t], block sums as
     * xs[xsOff + b * TILE + t]. For every group g in [g0, g1) writes token t's outputs at
     * out[outOff + 4 * (t * rows + g * LANES + r)].
     */
    abstract void gemm(MemorySegment w, int rows, int cols, float[] xp, int xpOff, float[] xs, int xsOff,
                       MemorySegment out, long outOff, int ntok, int g0, int g1);

    /**
     * Two consecutive tiles through the same row groups: the first full ({@link #TILE} tokens at xp[xpOff], block sums at
     * xs[xsOff]), the second of {@code ntok2} tokens at xp[xpOff + cols * TILE] (sums at xs[xsOff2]), its outputs
     * TILE tokens further on. A kernel whose weight loads cost as much as its FMAs overrides it to load each weight
     * once for both tiles; every output element keeps the instruction sequence of {@link #gemm}, so results do not
     * depend on which tokens share a call.
     */
    void gemmPair(MemorySegment w, int rows, int cols, float[] xp, int xpOff, float[] xs, int xsOff, int xsOff2,
                  MemorySegment out, long outOff, int ntok2, int g0, int g1) {
        gemm(w, rows, cols, xp, xpOff, xs, xsOff, out, outOff, TILE, g0, g1);
        gemm(w, rows, cols, xp, xpOff + cols * TILE, xs, xsOff2, out, outOff + (long) TILE * rows * Float.BYTES, ntok2, g0, g1);
    }

    /**
     * Writes accumulators to out. acc holds them token-major, tileGroups per token
     * (acc[(t * tileGroups + i) * LANES + lane]); the first {@code groups} of each token's groups, from group g,
     * and the first ntok tokens are real, and rows at and beyond {@code rows} are padding. (Plain copies:
     * masked vector stores would bloat the kernels past what C1 can compile.)
     */
    static void store(float[] acc, int tileGroups, int groups, int ntok, int rows, MemorySegment out, long outOff, int g) {
        for (int t = 0; t < ntok; t++) {
            for (int i = 0; i < groups; i++) {
                int r = (g + i) * LANES;
                MemorySegment.copy(acc, (t * tileGroups + i) * LANES, out, ValueLayout.JAVA_FLOAT,
                        outOff + ((long) t * rows + r) * Float.BYTES, Math.min(LANES, rows - r));
            }
        }
    }

    /** Sums of each block of 32 values of x[off, off + cols), each summed left to right in f32. */
    static void blockSums(float[] x, int off, int cols, float[] dst, int dstOff, int dstStride) {
        for (int b = 0; b < cols / 32; b++) {
            float s = 0;
            for (int i = 0; i < 32; i++) s += x[off + b * 32 + i];
            dst[dstOff + b * dstStride] = s;
        }
    }
}
