package dev.tandem.core.backend.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * Splits a matmul over the thread pool. One token: GEMV, tasks are runs of row groups. Several tokens: the
 * tokens are packed into tiles of {@link MatmulKernel#TILE} (the last one zero-padded) and each task takes a
 * pair of row groups through every tile, so its weights stay in cache while the activations stream.
 * Either way each output element is computed by the same instruction sequence (see {@link MatmulKernel}).
 */
final class CpuMatmul {
    private static final int TILE = MatmulKernel.TILE;
    private static final ThreadLocal<float[][]> SCRATCH = ThreadLocal.withInitial(() -> new float[3][]);

    private CpuMatmul() {}

    static void matmul(CpuThreadPool pool, CpuActivation x, CpuWeight w, CpuActivation out) {
        int n = x.rows(), rows = w.rows(), cols = w.cols();
        if (x.cols() != cols || out.cols() != rows || out.rows() < n) {
            throw new IllegalArgumentException("matmul " + n + "x" + x.cols() + " by " + w.name() + " " + rows + "x"
                    + cols + " into " + out.rows() + "x" + out.cols());
        }
        if (n == 0) return;
        MatmulKernel k = w.kernel();
        MemorySegment p = w.packed();
        int groups = MatmulKernel.groups(rows);
        int blocks = cols / 32;
        MemorySegment xs = x.segment();
        MemorySegment os = out.segment();
        long outOff = out.offset(0, 0);
        if (n == 1) {
            float[] xa = scratch(0, cols);
            MemorySegment.copy(xs, ValueLayout.JAVA_FLOAT, x.offset(0, 0), xa, 0, cols);
            float[] sums = null;
            if (k.needsBlockSums()) {
                sums = scratch(1, blocks);
                MatmulKernel.blockSums(xa, 0, cols, sums, 0, 1);
            }
            k.prepare(xa, 0, cols);
            float[] s = sums;
            // Tasks of whole quads of groups (the GEMV kernel's unit), about 8 per thread for balance.
            int quads = (groups + 3) / 4;
            int perTask = Math.max(1, quads / (pool.threads() * 8));
            int tasks = (quads + perTask - 1) / perTask;
            pool.parallelFor(tasks, i -> {
                int g0 = i * perTask * 4, g1 = Math.min(groups, (i + 1) * perTask * 4);
                k.gemv(p, rows, cols, xa, s, os, outOff, g0, g1);
            });
            return;
        }
        int tiles = (n + TILE - 1) / TILE;
        float[] xp = scratch(0, tiles * cols * TILE);
        float[] sums = k.needsBlockSums() ? scratch(1, tiles * blocks * TILE) : null;
        // Pack the tokens tile by tile (in parallel: at prefill sizes this is not negligible).
        pool.parallelFor(tiles, tile -> {
            float[] row = new float[cols];
            for (int lane = 0; lane < TILE; lane++) {
                int t = tile * TILE + lane;
                if (t < n) {
                    MemorySegment.copy(xs, ValueLayout.JAVA_FLOAT, x.offset(t, 0), row, 0, cols);
                } else {
                    Arrays.fill(row, 0f);
                }
                if (sums != null) MatmulKernel.blockSums(row, 0, cols, sums, tile * blocks * TILE + lane, TILE);
                k.prepare(row, 0, cols);
                int base = tile * cols * TILE + lane;
                for (int c = 0; c < cols; c++) xp[base + c * TILE] = row[c];
            }
        });
        int pairs = (groups + 1) / 2;
        pool.parallelFor(pairs, i -> {
            int g0 = 2 * i, g1 = Math.min(groups, g0 + 2);
            for (int tile = 0; tile < tiles; ) {
                int t0 = tile * TILE;
                if (tile + 1 < tiles) {
                    // Two tiles per pass: the kernel can load (and widen) each weight once for 2 * TILE tokens.
                    k.gemmPair(p, rows, cols, xp, tile * cols * TILE, sums, tile * blocks * TILE, (tile + 1) * blocks * TILE, os,
                            outOff + (long) t0 * rows * Float.BYTES, Math.min(TILE, n - t0 - TILE), g0, g1);
                    tile += 2;
                } else {
                    k.gemm(p, rows, cols, xp, tile * cols * TILE, sums, tile * blocks * TILE, os,
                            outOff + (long) t0 * rows * Float.BYTES, Math.min(TILE, n - t0), g0, g1);
                    tile++;
                }
            }
        });
    }

    /** A per-thread buffer of at least n floats; contents undefined. */
    private static float[] scratch(int slot, int n) {
        float[][] s = SCRATCH.get();
        if (s[slot] == null || s[slot].length < n) s[slot] = new float[Math.max(n, 64)];
        return s[slot];
    }
}
