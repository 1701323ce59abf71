package dev.tandem.core.backend.cpu;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.AttentionBatch;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.Rope;
import dev.tandem.core.backend.Weight;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Matmul throughput of the CPU backend (not a unit test). For each format: GEMV (one token, the decode case)
 * and GEMM (a prefill batch) on 768x768, 2048x768, 768x2048 and 32000x768 weights, then the matmuls of one
 * decode step of a 110M-parameter Llama (dim 768, hidden 2048, 12 layers, vocab 32000; 62 MB at Q4_0), whose
 * weights do not fit in cache, as tokens per second, and the other ops of a decode step. GB/s counts the
 * weight bytes of the file format. Best of many short runs, as the machine may be shared.
 *
 * <pre>
 * mvn -q -pl core test-compile
 * java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
 *      -cp core/target/classes:core/target/test-classes dev.tandem.core.backend.cpu.MatmulBench [threads] [tokens] [types]
 * </pre>
 */
public final class MatmulBench {
    private static final int[][] SHAPES = {{768, 768}, {2048, 768}, {768, 2048}, {32000, 768}};

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        int tokens = args.length > 1 ? Integer.parseInt(args[1]) : 128;
        List<DType> types = new ArrayList<>();
        if (args.length > 2) {
            for (String t : args[2].split(",")) types.add(DType.valueOf(t));
        } else {
            types.addAll(List.of(DType.values()));
        }
        System.out.printf("CPU backend matmul, %d threads, %d float lanes, GEMM batch %d tokens%n", threads,
                MatmulKernel.LANES, tokens);
        try (CpuBackend b = new CpuBackend(threads)) {
            for (DType type : types) {
                for (int[] s : SHAPES) {
                    CpuWeight w = b.upload(random(type, s[0], s[1], 1));
                    double[] gemv = time(b, w, 1);
                    double[] gemm = time(b, w, tokens);
                    System.out.printf("%-5s %5dx%-5d GEMV %6.1f GB/s %6.1f GFLOP/s | GEMM %6.1f GFLOP/s%n", type, s[0], s[1],
                            gemv[0], gemv[1], gemm[1]);
                }
                decodeModel(b, type);
            }
            for (int ctx : new int[]{256, 1024}) decodeOtherOps(b, ctx);
        }
    }

    /** The non-matmul ops of one decode step of the same model (12 heads of 64), at a given context length. */
    private static void decodeOtherOps(CpuBackend b, int ctx) {
        int dim = 768, hidden = 2048, layers = 12, heads = 12, hd = 64, bs = 16;
        KvLayout layout = new KvLayout(layers, ctx / bs + 1, bs, heads, hd);
        KvStorage kv = b.allocateKv(layout);
        int[] table = new int[ctx / bs + 1];
        for (int i = 0; i < table.length; i++) table[i] = table.length - 1 - i;
        AttentionBatch batch = new AttentionBatch(List.of(new AttentionBatch.Seq(0, 1, ctx, table)), heads, heads, hd,
                0.125f);
        Rope rope = new Rope(hd, Rope.Style.INTERLEAVED, Rope.invFreq(hd, 10000), ctx + 1);
        Activation x = b.allocate(1, dim), h = b.allocate(1, dim), q = b.allocate(1, dim), o = b.allocate(1, dim),
                g = b.allocate(1, hidden), u = b.allocate(1, hidden);
        fill(x);
        fill(q);
        fill(g);
        fill(u);
        Weight gamma = b.upload(random(DType.F32, 1, dim, 5));
        for (int l = 0; l < layers; l++) b.writeKv(kv, l, q, q, new int[]{0});
        int[] pos = {ctx - 1};
        Runnable step = () -> {
            for (int l = 0; l < layers; l++) {
                b.rmsNorm(x, gamma, 1e-5f, h);
                b.rope(q, heads, pos, rope);
                b.rope(o, heads, pos, rope);
                b.writeKv(kv, l, q, o, new int[]{table[(ctx - 1) / bs] * bs + (ctx - 1) % bs});
                b.attention(q, kv, l, batch, o);
                b.add(x, o);
                b.rmsNorm(x, gamma, 1e-5f, h);
                b.swiglu(g, u, g);
                b.add(x, o);
            }
            b.rmsNorm(x, gamma, 1e-5f, h);
        };
        long warm = System.nanoTime() + 3_000_000_000L; // past C2 compilation of every op
        while (System.nanoTime() < warm) step.run();
        double best = Double.MAX_VALUE;
        for (int run = 0; run < 30; run++) {
            long t0 = System.nanoTime();
            for (int i = 0; i < 10; i++) step.run();
            best = Math.min(best, (System.nanoTime() - t0) / 10.0);
        }
        System.out.printf("110M model decode, other ops (norms, rope, KV write, attention, SwiGLU, residuals) at context %d: %.3f ms/token%n",
                ctx, best / 1e6);
    }

    /** {GB/s of weights, GFLOP/s} for x of n rows, best of several timed runs of ~0.2 s. */
    private static double[] time(CpuBackend b, CpuWeight w, int n) {
        Activation x = b.allocate(n, w.cols()), out = b.allocate(n, w.rows());
        fill(x);
        long bytes = w.dtype().bytesFor((long) w.rows() * w.cols());
        long warm = System.nanoTime() + 300_000_000L;
        while (System.nanoTime() < warm) b.matmul(x, w, out);
        double flops = 2.0 * w.rows() * w.cols() * n;
        int reps = (int) Math.max(1, Math.min(100_000, 5e7 / (flops + bytes)));
        double best = Double.MAX_VALUE;
        for (int run = 0; run < 40; run++) {
            long t0 = System.nanoTime();
            for (int i = 0; i < reps; i++) b.matmul(x, w, out);
            best = Math.min(best, (System.nanoTime() - t0) / (double) reps);
        }
        return new double[]{bytes / best, flops / best};
    }

    /** All GEMVs of one decode step of a 110M Llama, weights far larger than the caches. */
    private static void decodeModel(CpuBackend b, DType type) {
        int dim = 768, hidden = 2048, layers = 12, vocab = 32000;
        List<CpuWeight> ws = new ArrayList<>();
        long bytes = 0;
        for (int l = 0; l < layers; l++) {
            for (int[] s : new int[][]{{dim, dim}, {dim, dim}, {dim, dim}, {dim, dim}, {hidden, dim}, {hidden, dim}, {dim, hidden}}) {
                ws.add(b.upload(random(type, s[0], s[1], l * 10L + ws.size())));
                bytes += type.bytesFor((long) s[0] * s[1]);
            }
        }
        ws.add(b.upload(random(type, vocab, dim, 999)));
        bytes += type.bytesFor((long) vocab * dim);
        Activation xd = b.allocate(1, dim), xh = b.allocate(1, hidden), od = b.allocate(1, dim),
                oh = b.allocate(1, hidden), ov = b.allocate(1, vocab);
        fill(xd);
        fill(xh);
        Runnable step = () -> {
            for (CpuWeight w : ws) {
                Activation in = w.cols() == dim ? xd : xh;
                Activation out = w.rows() == dim ? od : w.rows() == hidden ? oh : ov;
                b.matmul(in, w, out);
            }
        };
        long warm = System.nanoTime() + 1_000_000_000L;
        while (System.nanoTime() < warm) step.run();
        double best = Double.MAX_VALUE;
        for (int run = 0; run < 60; run++) {
            long t0 = System.nanoTime();
            step.run();
            best = Math.min(best, System.nanoTime() - t0);
        }
        System.out.printf("%-5s 110M model decode: %.1f MB/token, %.2f ms/token, %.1f GB/s, %.0f tokens/s (matmuls only)%n",
                type, bytes / 1e6, best / 1e6, bytes / best, 1e9 / best);
    }

    private static void fill(Activation a) {
        CpuActivation c = CpuActivation.of(a);
        SplittableRandom r = new SplittableRandom(3);
        for (long i = 0; i < (long) c.rows() * c.cols(); i++) c.segment().setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) r.nextDouble(-1, 1));
    }

    /** A random weight straight in the file format (values of a plausible scale), in native memory. */
    static Tensor random(DType type, int rows, int cols, long seed) {
        long n = (long) rows * cols;
        MemorySegment seg = Arena.ofAuto().allocate(type.bytesFor(n), 64);
        SplittableRandom r = new SplittableRandom(seed);
        switch (type) {
            case F32 -> {
                for (long i = 0; i < n; i++) seg.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) r.nextDouble(-0.1, 0.1));
            }
            case F16 -> {
                for (long i = 0; i < n; i++) seg.setAtIndex(ValueLayout.JAVA_SHORT, i, Float.floatToFloat16((float) r.nextDouble(-0.1, 0.1)));
            }
            case BF16 -> {
                for (long i = 0; i < n; i++) seg.setAtIndex(ValueLayout.JAVA_SHORT, i, (short) (Float.floatToRawIntBits((float) r.nextDouble(-0.1, 0.1)) >>> 16));
            }
            case Q8_0, Q4_0 -> {
                int block = type.blockBytes();
                for (long i = 0; i < seg.byteSize(); i++) seg.set(ValueLayout.JAVA_BYTE, i, (byte) r.nextInt());
                for (long o = 0; o < seg.byteSize(); o += block) {
                    seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, o, Float.floatToFloat16((float) r.nextDouble(0.001, 0.01)));
                }
            }
        }
        return new Tensor("w", type, new long[]{rows, cols}, seg);
    }
}
