package dev.tandem.core.backend.cpu;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.Rope;
import dev.tandem.core.backend.Weight;
import dev.tandem.core.backend.reference.ReferenceBackend;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Supplier;
import java.util.stream.Stream;

import static dev.tandem.core.backend.cpu.BackendTestData.activation;
import static dev.tandem.core.backend.cpu.BackendTestData.gaussian;
import static dev.tandem.core.backend.cpu.BackendTestData.randomRows;
import static dev.tandem.core.backend.cpu.BackendTestData.read;
import static dev.tandem.core.backend.cpu.BackendTestData.tensor;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every op of every backend under test against {@link ReferenceBackend}, on random inputs of awkward sizes.
 * A backend joins by a subclass that lists its factories ({@link CpuBackendOpsTest}; the CUDA module has its own).
 *
 * <p>Bound: arithmetic ops must match per row to {@value #TOL} of the row's largest reference magnitude
 * (max |got - ref| <= TOL * max |ref|); a per-element relative bound would be meaningless for sums that cancel
 * to near zero. Every matmul format computes in f32 from exactly decoded weights, so one bound serves all.
 * Data movement (embed, gatherRows, read, writeKv) must be exact.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class BackendOpsContract {
    /** The bound for f32 backends. */
    public static final double TOL = 1e-5;

    /**
     * A backend under test: {@code tol} bounds arithmetic ops; with {@code exact}, data movement (embed, gatherRows,
     * read, writeKv) must be bit-exact, else it is held to {@code tol} too (backends that store bf16).
     */
    public record Factory(String name, Supplier<Backend> create, double tol, boolean exact) {
        public Factory(String name, Supplier<Backend> create) { this(name, create, TOL, true); }

        double moves() { return exact ? 0 : tol; }

        @Override
        public String toString() { return name; }
    }

    /** The backends this class tests. */
    protected abstract List<Factory> factories();

    static Backend ref;

    @BeforeAll
    public void setUp() { ref = new ReferenceBackend(); }

    @AfterAll
    public void tearDown() { ref.close(); }

    public Stream<Factory> backends() { return factories().stream(); }

    /** Backend x matmul shape x dtype; x rows up to 37 (GEMV, padded tiles, many tiles), out rows not multiples of 16. */
    public Stream<Arguments> matmulCases() {
        List<Arguments> a = new ArrayList<>();
        int[][] shapes = {{1, 37, 96}, {3, 70, 160}, {7, 16, 224}, {13, 100, 96}, {37, 33, 160}, {2, 1, 32}};
        for (Factory f : factories()) {
            for (DType t : DType.values()) {
                for (int[] s : shapes) a.add(Arguments.of(f, t, s[0], s[1], s[2]));
                if (!t.isQuantized()) {
                    a.add(Arguments.of(f, t, 1, 21, 37));
                    a.add(Arguments.of(f, t, 5, 50, 13));
                    a.add(Arguments.of(f, t, 9, 7, 1));
                }
            }
        }
        return a.stream();
    }

    @ParameterizedTest(name = "{0} {1} x{2} w{3}x{4}")
    @MethodSource("matmulCases")
    public void matmul(Factory f, DType type, int n, int rows, int cols) {
        Random rnd = new Random(n * 1000L + rows * 7L + cols + type.ordinal());
        Tensor w = BackendTestData.matrix(rnd, type, rows, cols);
        float[][] x = randomRows(rnd, n, cols, 1f);
        try (Backend b = f.create().get()) {
            assertRowsClose(run(ref, x, w, rows), run(b, x, w, rows), f.tol(), "matmul");
        }
    }

    private static float[][] run(Backend b, float[][] x, Tensor w, int rows) {
        Weight wt = b.upload(w);
        Activation out = b.allocate(x.length + 2, rows);
        b.matmul(activation(b, x), wt, out.rows(x.length));
        return read(b, out.rows(x.length));
    }

    public Stream<Arguments> embedCases() {
        List<Arguments> a = new ArrayList<>();
        for (Factory f : factories()) for (DType t : DType.values()) a.add(Arguments.of(f, t));
        return a.stream();
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("embedCases")
    public void embed(Factory f, DType type) {
        Random rnd = new Random(type.ordinal());
        int cols = type.isQuantized() ? 160 : 100;
        Tensor table = BackendTestData.matrix(rnd, type, 45, cols);
        int[] tokens = {3, 44, 0, 3, 17, 29, 8};
        try (Backend b = f.create().get()) {
            assertRowsClose(embedRows(ref, table, tokens), embedRows(b, table, tokens), f.moves(), "embed");
        }
    }

    private static float[][] embedRows(Backend b, Tensor table, int[] tokens) {
        Activation out = b.allocate(tokens.length, table.cols());
        b.embed(b.upload(table), tokens, out);
        return read(b, out);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    public void rowOps(Factory f) {
        Random rnd = new Random(42);
        for (int cols : new int[]{1, 13, 96, 100, 4099}) {
            for (int n : new int[]{1, 7, 37}) {
                float[][] x = inputs(f, randomRows(rnd, n, cols, 2f)), y = inputs(f, randomRows(rnd, n, cols, 2f));
                Tensor gamma = tensor("g", DType.F32, new long[]{cols}, gaussian(rnd, cols, 1f));
                Tensor bias = tensor("b", DType.BF16, new long[]{cols}, gaussian(rnd, cols, 1f));
                Tensor beta = tensor("beta", DType.F32, new long[]{cols}, gaussian(rnd, cols, 1f));
                // LayerNorm must not care about a large common offset (OPT's residual stream has one): x + 50.
                float[][] shifted = inputs(f, shift(x, 50f));
                try (Backend b = f.create().get()) {
                    String at = " cols " + cols + " rows " + n;
                    assertRowsClose(rmsNorm(ref, x, gamma), rmsNorm(b, x, gamma), f.tol(), "rmsNorm" + at);
                    assertRowsClose(add(ref, x, y), add(b, x, y), f.tol(), "add" + at);
                    assertRowsClose(addBias(ref, x, bias), addBias(b, x, bias), f.tol(), "addBias" + at);
                    assertRowsClose(swiglu(ref, x, y), swiglu(b, x, y), f.tol(), "swiglu" + at);
                    if (cols > 1) { // a one-column row has no variance: LayerNorm of it is beta, whatever the rounding
                        assertRowsClose(layerNorm(ref, x, null, gamma, beta), layerNorm(b, x, null, gamma, beta), f.tol(), "layerNorm" + at);
                        assertRowsClose(layerNorm(ref, shifted, null, gamma, beta), layerNorm(b, shifted, null, gamma, beta), f.tol(),
                                "layerNorm of x + 50" + at);
                        assertRowsClose(layerNorm(ref, x, y, gamma, beta), layerNorm(b, x, y, gamma, beta), f.tol(), "addLayerNorm" + at);
                        assertRowsClose(addLayerNormResidual(ref, x, y, gamma, beta), addLayerNormResidual(b, x, y, gamma, beta), f.tol(),
                                "addLayerNorm residual" + at);
                    }
                    assertRowsClose(relu(ref, x, null), relu(b, x, null), f.tol(), "relu" + at);
                    assertRowsClose(relu(ref, x, bias), relu(b, x, bias), f.tol(), "addBiasRelu" + at);
                    int[] pick = {n - 1, 0, n / 2, n - 1};
                    assertRowsClose(gather(ref, x, pick), gather(b, x, pick), f.moves(), "gatherRows" + at);
                }
            }
        }
    }

    private static float[][] rmsNorm(Backend b, float[][] x, Tensor gamma) {
        Activation out = b.allocate(x.length, x[0].length);
        b.rmsNorm(activation(b, x), b.upload(gamma), 1e-5f, out);
        return read(b, out);
    }

    private static float[][] shift(float[][] x, float by) {
        float[][] r = new float[x.length][];
        for (int i = 0; i < x.length; i++) {
            r[i] = x[i].clone();
            for (int j = 0; j < r[i].length; j++) r[i][j] += by;
        }
        return r;
    }

    /** layerNorm(x), or with a residual addLayerNorm(acc = x, y): the normalised rows. */
    private static float[][] layerNorm(Backend b, float[][] x, float[][] residual, Tensor gamma, Tensor beta) {
        Activation out = b.allocate(x.length, x[0].length), acc = activation(b, x);
        if (residual == null) b.layerNorm(acc, b.upload(gamma), b.upload(beta), 1e-5f, out);
        else b.addLayerNorm(acc, activation(b, residual), b.upload(gamma), b.upload(beta), 1e-5f, out);
        return read(b, out);
    }

    /** What addLayerNorm leaves in its accumulator: x + y. */
    private static float[][] addLayerNormResidual(Backend b, float[][] x, float[][] y, Tensor gamma, Tensor beta) {
        Activation out = b.allocate(x.length, x[0].length), acc = activation(b, x);
        b.addLayerNorm(acc, activation(b, y), b.upload(gamma), b.upload(beta), 1e-5f, out);
        return read(b, acc);
    }

    /** relu(x), or with a bias addBiasRelu(x, bias). */
    private static float[][] relu(Backend b, float[][] x, Tensor bias) {
        Activation a = activation(b, x);
        if (bias == null) b.relu(a);
        else b.addBiasRelu(a, b.upload(bias));
        return read(b, a);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("embedCases")
    public void positionEmbedding(Factory f, DType type) {
        Random rnd = new Random(100 + type.ordinal());
        int cols = type.isQuantized() ? 160 : 100;
        Tensor table = BackendTestData.matrix(rnd, type, 45, cols);
        float[][] x = inputs(f, randomRows(rnd, 7, cols, 1f));
        int[] positions = {0, 1, 42, 5, 5, 17, 3}; // + offset 2: rows 2..44 of the 45
        try (Backend b = f.create().get()) {
            assertRowsClose(positions(ref, x, table, positions), positions(b, x, table, positions), f.tol(), "addPositionEmbedding");
        }
    }

    private static float[][] positions(Backend b, float[][] x, Tensor table, int[] positions) {
        Activation a = activation(b, x);
        b.addPositionEmbedding(a, b.upload(table), positions, 2);
        return read(b, a);
    }

    private static float[][] add(Backend b, float[][] x, float[][] y) {
        Activation acc = activation(b, x);
        b.add(acc, activation(b, y));
        return read(b, acc);
    }

    private static float[][] addBias(Backend b, float[][] x, Tensor bias) {
        Activation acc = activation(b, x);
        b.addBias(acc, b.upload(bias));
        return read(b, acc);
    }

    private static float[][] swiglu(Backend b, float[][] g, float[][] u) {
        Activation out = b.allocate(g.length, g[0].length);
        b.swiglu(activation(b, g), activation(b, u), out);
        return read(b, out);
    }

    private static float[][] gather(Backend b, float[][] x, int[] rows) {
        Activation out = b.allocate(rows.length, x[0].length);
        b.gatherRows(activation(b, x), rows, out);
        return read(b, out);
    }

    public Stream<Arguments> ropeCases() {
        List<Arguments> a = new ArrayList<>();
        for (Factory f : factories()) {
            for (Rope.Style s : Rope.Style.values()) {
                for (int hd : new int[]{8, 48, 56, 64, 128}) a.add(Arguments.of(f, s, hd));
            }
        }
        return a.stream();
    }

    @ParameterizedTest(name = "{0} {1} head_dim {2}")
    @MethodSource("ropeCases")
    public void rope(Factory f, Rope.Style style, int headDim) {
        Random rnd = new Random(headDim);
        Rope rope = new Rope(headDim, style, Rope.llama3Scaled(Rope.invFreq(headDim, 500000), 8, 1, 4, 8192), 300);
        int heads = 3;
        float[][] x = randomRows(rnd, 7, heads * headDim, 1f);
        int[] pos = {0, 1, 17, 299, 5, 5, 123};
        try (Backend b = f.create().get()) {
            assertRowsClose(rope(ref, x, heads, pos, rope), rope(b, x, heads, pos, rope), f.tol(), "rope");
        }
    }

    private static float[][] rope(Backend b, float[][] x, int heads, int[] pos, Rope rope) {
        Activation a = activation(b, x);
        b.rope(a, heads, pos, rope);
        return read(b, a);
    }

    public Stream<Arguments> attentionCases() {
        List<Arguments> a = new ArrayList<>();
        // heads, kvHeads, headDim, blockSize, qLens, ctxLens: a prefill chunk with cached context, decodes,
        // a first token, a whole prompt, contexts of several attention chunks; GQA groups 2 and 4, multi-head.
        Object[][] cases = {
                {4, 2, 56, 4, new int[]{5, 1, 1, 1}, new int[]{9, 23, 1, 40}},
                {4, 2, 48, 16, new int[]{1, 6, 1}, new int[]{70, 6, 17}},
                {2, 2, 8, 4, new int[]{3, 1}, new int[]{3, 35}},
                {6, 2, 64, 16, new int[]{17, 1}, new int[]{20, 130}},
                {3, 3, 128, 8, new int[]{1, 4}, new int[]{9, 12}},
                {4, 1, 128, 16, new int[]{1, 3, 1}, new int[]{300, 200, 64}},
                // a prefill chunk longer than one GPU attention tile (128 rows) after cached context, beside a decode
                {4, 2, 128, 16, new int[]{150, 1}, new int[]{170, 40}},
                {2, 1, 64, 8, new int[]{130}, new int[]{130}},
                // decodes over contexts of many 32-key tiles, one ending mid-tile: GQA groups 8 and 4 (the GPU's tiled
                // decode kernel and its splits)
                {8, 1, 128, 16, new int[]{1, 1, 1}, new int[]{1000, 33, 517}},
                {16, 4, 64, 16, new int[]{1, 1}, new int[]{2049, 5}},
        };
        for (Factory f : factories()) for (Object[] c : cases) a.add(Arguments.of(f, c[0], c[1], c[2], c[3], c[4], c[5]));
        return a.stream();
    }

    @ParameterizedTest(name = "{0} heads {1}/{2} head_dim {3} block {4}")
    @MethodSource("attentionCases")
    public void attention(Factory f, int heads, int kvHeads, int headDim, int blockSize, int[] qLens, int[] ctxLens) {
        Random rnd = new Random(headDim * 31L + heads);
        BackendTestData.Attn t = BackendTestData.Attn.random(rnd, heads, kvHeads, headDim, blockSize, qLens, ctxLens);
        try (Backend b = f.create().get()) {
            assertRowsClose(t.run(ref), t.run(b), f.tol(), "attention");
        }
    }

    /**
     * Inputs as the backend holds them: a backend that is not exact stores activations it receives through an
     * embedding table in bf16, so the reference gets the same rounded values and only the op's own error is measured.
     */
    static float[][] inputs(Factory f, float[][] x) {
        if (f.exact()) return x;
        float[][] r = new float[x.length][];
        for (int i = 0; i < x.length; i++) {
            r[i] = new float[x[i].length];
            for (int j = 0; j < r[i].length; j++) r[i][j] = dev.tandem.core.tensor.Halfs.bf16ToFloat(dev.tandem.core.tensor.Halfs.floatToBf16(x[i][j]));
        }
        return r;
    }

    /** Per row: max |got - ref| <= tol * max |ref| (tol 0: bit-identical). */
    static void assertRowsClose(float[][] want, float[][] got, double tol, String what) {
        for (int r = 0; r < want.length; r++) {
            if (tol == 0) {
                assertArrayEquals(want[r], got[r], what + " row " + r);
                continue;
            }
            double scale = 0, err = 0;
            int worst = 0;
            for (int c = 0; c < want[r].length; c++) {
                scale = Math.max(scale, Math.abs(want[r][c]));
                double e = Math.abs((double) got[r][c] - want[r][c]);
                if (!(e <= err)) {
                    err = e;
                    worst = c;
                }
            }
            double bound = tol * Math.max(scale, Float.MIN_NORMAL);
            assertTrue(err <= bound, what + " row " + r + " col " + worst + ": got " + got[r][worst] + " want "
                    + want[r][worst] + " (error " + err + " > " + bound + ")");
        }
    }
}
