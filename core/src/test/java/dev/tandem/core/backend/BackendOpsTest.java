package dev.tandem.core.backend;

import dev.tandem.core.backend.cpu.CpuActivation;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.backend.reference.ReferenceBackend;
import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Supplier;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every Backend op of each fast backend against the scalar reference, on random inputs of awkward sizes
 * (columns not multiples of the vector width, head_dim 56, 48 and 8, GQA, mixed prefill + decode batches with
 * scattered block tables). A CUDA backend joins by adding its factory to {@link #backends()}.
 */
class BackendOpsTest {
    static final Arena ARENA = Arena.ofShared();
    static final ReferenceBackend REF = new ReferenceBackend();

    static List<Supplier<Backend>> backends() {
        return List.of(() -> new CpuBackend(2), () -> new CpuBackend(1));
    }

    @AfterAll
    static void close() { REF.close(); }

    /** Relative error bound per op family: f32 arithmetic in a different order than the double reference. */
    static final double TOL = 2e-5;

    static Tensor randomTensor(String name, DType type, int rows, int cols, Random r) {
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) v[i] = (float) r.nextGaussian();
        long[] shape = rows == 1 ? new long[] {cols} : new long[] {rows, cols};
        MemorySegment seg = ARENA.allocate(type.bytesFor((long) rows * cols), 1);
        Codec.encode(type, v, 0, v.length, seg, 0);
        return new Tensor(name, type, shape, seg);
    }

    static void fill(Backend b, Activation a, float[] v) {
        CpuActivation c = CpuActivation.of(a);
        MemorySegment.copy(v, 0, c.segment(), ValueLayout.JAVA_FLOAT, 0, a.rows() * a.cols());
    }

    static float[] dump(Backend b, Activation a) {
        float[] out = new float[a.rows() * a.cols()];
        float[] row = new float[a.cols()];
        for (int r = 0; r < a.rows(); r++) {
            b.read(a, r, row);
            System.arraycopy(row, 0, out, r * a.cols(), a.cols());
        }
        return out;
    }

    static float[] random(int n, Random r) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) r.nextGaussian();
        return v;
    }

    static void close(float[] expected, float[] actual, String what) {
        double scale = 0;
        for (float e : expected) scale = Math.max(scale, Math.abs(e));
        for (int i = 0; i < expected.length; i++) {
            double err = Math.abs(expected[i] - actual[i]) / Math.max(1e-3, scale);
            assertTrue(err <= TOL, what + ": element " + i + " expected " + expected[i] + " got " + actual[i] + " (rel " + err + ")");
        }
    }

    static Stream<Arguments> matmulCases() {
        List<Arguments> a = new ArrayList<>();
        for (int b = 0; b < backends().size(); b++) {
            for (DType t : DType.values()) {
                int[] colsList = t.isQuantized() ? new int[] {32, 96, 224} : new int[] {7, 56, 100, 129};
                for (int cols : colsList) for (int rows : new int[] {1, 13}) for (int tokens : new int[] {1, 3, 7, 37}) a.add(Arguments.of(b, t, rows, cols, tokens));
            }
        }
        return a.stream();
    }

    @ParameterizedTest(name = "backend {0} matmul {1} {2}x{3} tokens {4}")
    @MethodSource("matmulCases")
    void matmulMatchesReference(int backend, DType type, int rows, int cols, int tokens) {
        Random r = new Random(rows * 31 + cols * 7 + tokens);
        Tensor w = randomTensor("w", type, rows, cols, r);
        float[] x = random(tokens * cols, r);
        try (Backend b = backends().get(backend).get()) {
            Activation xr = REF.allocate(tokens, cols), or = REF.allocate(tokens, rows);
            fill(REF, xr, x);
            REF.matmul(xr, REF.upload(w), or);
            Activation xb = b.allocate(tokens, cols), ob = b.allocate(tokens, rows);
            fill(b, xb, x);
            b.matmul(xb, b.upload(w), ob);
            close(dump(REF, or), dump(b, ob), type + " matmul");
            // embed decodes rows exactly as the reference does
            int[] ids = {0, rows - 1, rows / 2};
            Activation er = REF.allocate(3, cols), eb = b.allocate(3, cols);
            REF.embed(REF.upload(w), ids, er);
            b.embed(b.upload(w), ids, eb);
            assertArrayEquals(dump(REF, er), dump(b, eb), type + " embed");
        }
    }

    static Stream<Arguments> shapes() {
        List<Arguments> a = new ArrayList<>();
        for (int b = 0; b < backends().size(); b++) for (int hd : new int[] {56, 48, 8}) a.add(Arguments.of(b, hd));
        return a.stream();
    }

    @ParameterizedTest(name = "backend {0} elementwise ops, head_dim {1}")
    @MethodSource("shapes")
    void normRopeSwigluAddBiasMatchReference(int backend, int hd) {
        Random r = new Random(hd);
        int heads = 3, rows = 5, cols = heads * hd;
        float[] x = random(rows * cols, r), y = random(rows * cols, r);
        Tensor gamma = randomTensor("g", DType.F32, 1, cols, r), bias = randomTensor("b", DType.F32, 1, cols, r);
        int[] pos = {0, 1, 17, 100, 511};
        try (Backend b = backends().get(backend).get()) {
            float[][] results = new float[2][];
            int i = 0;
            for (Backend be : new Backend[] {REF, b}) {
                Activation xa = be.allocate(rows, cols), ya = be.allocate(rows, cols), o = be.allocate(rows, cols);
                fill(be, xa, x);
                fill(be, ya, y);
                be.rmsNorm(xa, be.upload(gamma), 1e-5f, o);
                be.add(o, ya);
                be.addBias(o, be.upload(bias));
                for (Rope.Style style : Rope.Style.values()) be.rope(o, heads, pos, new Rope(hd, style, Rope.invFreq(hd, 10000), 512));
                be.swiglu(o, ya, xa);
                results[i++] = dump(be, xa);
            }
            close(results[0], results[1], "norm/add/bias/rope/swiglu");
        }
    }

    @ParameterizedTest(name = "backend {0} paged attention, head_dim {1}")
    @MethodSource("shapes")
    void pagedAttentionMatchesReferenceOnAMixedBatch(int backend, int hd) {
        Random r = new Random(100 + hd);
        int heads = 4, kvHeads = 2, bs = 16, blocks = 12;
        // seq A: prefill chunk of 21 tokens after 10 cached; seq B: one decode token at position 40; seq C: a 1-token prompt.
        int[][] tables = {{7, 2}, {0, 9, 4}, {11}};
        int[] qLen = {21, 1, 1}, ctx = {31, 41, 1};
        try (Backend b = backends().get(backend).get()) {
            float[][] results = new float[2][];
            int i = 0;
            KvLayout layout = new KvLayout(1, blocks, bs, kvHeads, hd);
            float[] keys = random(blocks * bs * kvHeads * hd, r), values = random(blocks * bs * kvHeads * hd, r);
            int rows = 23;
            float[] q = random(rows * heads * hd, r);
            for (Backend be : new Backend[] {REF, b}) {
                KvStorage kv = be.allocateKv(layout);
                // write every slot through writeKv so both backends hold the same cache
                Activation k = be.allocate(blocks * bs, kvHeads * hd), v = be.allocate(blocks * bs, kvHeads * hd);
                fill(be, k, keys);
                fill(be, v, values);
                int[] slots = new int[blocks * bs];
                for (int s = 0; s < slots.length; s++) slots[s] = s;
                be.writeKv(kv, 0, k, v, slots);
                List<AttentionBatch.Seq> seqs = List.of(new AttentionBatch.Seq(0, qLen[0], ctx[0], tables[0]),
                        new AttentionBatch.Seq(21, qLen[1], ctx[1], tables[1]), new AttentionBatch.Seq(22, qLen[2], ctx[2], tables[2]));
                Activation qa = be.allocate(rows, heads * hd), o = be.allocate(rows, heads * hd);
                fill(be, qa, q);
                be.attention(qa, kv, 0, new AttentionBatch(seqs, heads, kvHeads, hd, (float) (1 / Math.sqrt(hd))), o);
                results[i++] = dump(be, o);
            }
            close(results[0], results[1], "attention");
        }
    }

    @ParameterizedTest(name = "backend {0} batch invariance")
    @MethodSource("backendIndexes")
    void aTokensResultDoesNotDependOnItsBatch(int backend) {
        Random r = new Random(5);
        try (Backend b = backends().get(backend).get()) {
            for (DType t : DType.values()) {
                int cols = 96, rows = 40;
                Tensor w = randomTensor("w", t, rows, cols, r);
                Weight wb = b.upload(w);
                float[] x = random(17 * cols, r);
                Activation alone = b.allocate(1, rows), x1 = b.allocate(1, cols);
                float[] row0 = new float[cols];
                System.arraycopy(x, 0, row0, 0, cols);
                fill(b, x1, row0);
                b.matmul(x1, wb, alone);
                float[] single = dump(b, alone);
                for (int n : new int[] {3, 8, 17}) {
                    Activation xn = b.allocate(n, cols), on = b.allocate(n, rows);
                    float[] xs = new float[n * cols];
                    System.arraycopy(x, 0, xs, 0, n * cols);
                    fill(b, xn, xs);
                    b.matmul(xn, wb, on);
                    float[] first = new float[rows];
                    System.arraycopy(dump(b, on), 0, first, 0, rows);
                    assertArrayEquals(single, first, t + ": row 0 alone vs in a batch of " + n);
                }
            }
        }
    }

    static Stream<Integer> backendIndexes() { return Stream.iterate(0, i -> i + 1).limit(backends().size()); }
}
