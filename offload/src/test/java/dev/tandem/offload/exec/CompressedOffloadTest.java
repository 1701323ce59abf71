package dev.tandem.offload.exec;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.kv.BlockPool;
import dev.tandem.core.kv.BlockTable;
import dev.tandem.core.model.LlamaModel;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.StepBatch;
import dev.tandem.core.quant.WeightCompression;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.core.tensor.Tensor;
import dev.tandem.offload.policy.OffloadPolicy;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** FlexGen's compression in an offloaded run: the KV cache and the weights in 4-bit groups. */
class CompressedOffloadTest {
    static final Path SHARED = Path.of(System.getProperty("tandem.shared", "../../shared"));
    static final List<int[]> PROMPTS = List.of(new int[] {0, 6583, 606, 260, 579}, new int[] {0, 481, 1673, 296},
            new int[] {0, 260, 507, 1913, 296, 260});

    @TempDir
    Path tmp;

    /** A GQ4 host cache (CPU path, attention on the CPU) gives the in-memory engine's tokens with a GQ4 paged cache. */
    @Test
    void compressedCacheMatchesTheInMemoryEngineWithACompressedCache() {
        int tokens = 16;
        try (Model model = ModelLoader.load(SHARED.resolve("models/gutenberg-stories-llama-25m"), null); CpuBackend cpu = new CpuBackend(2)) {
            List<int[]> want = new ArrayList<>();
            for (int[] p : PROMPTS) want.add(greedy(cpu, model, p, tokens));
            for (String policy : new String[] {"3 1 100 0 100 0 100 0 compress-cache", "2 2 0 50 0 100 0 100 compress-cache"}) {
                List<int[]> got = run(cpu, model, policy, tokens);
                for (int i = 0; i < PROMPTS.size(); i++) assertArrayEquals(want.get(i), got.get(i), "prompt " + i + " policy " + policy);
            }
        }
    }

    /**
     * Compressed weights (resident or streamed from disk) and a compressed cache give the in-memory engine's tokens with
     * the same compression: matrices through WeightCompression's round trip, embeddings and output head as stored.
     */
    @Test
    void compressedWeightsAndCacheMatchTheInMemoryEngineWithTheSameCompression() {
        int tokens = 16;
        try (Model model = ModelLoader.load(SHARED.resolve("models/gutenberg-stories-llama-25m"), null);
             Model rounded = WeightCompression.roundTrip(ModelLoader.load(SHARED.resolve("models/gutenberg-stories-llama-25m"), null));
             CpuBackend cpu = new CpuBackend(2)) {
            List<int[]> want = new ArrayList<>();
            for (int[] p : PROMPTS) want.add(greedy(cpu, rounded, p, tokens));
            for (String policy : new String[] {"3 1 100 0 100 0 100 0 compress-weight compress-cache",
                    "2 2 0 50 0 100 0 100 compress-weight compress-cache"}) {
                List<int[]> got = run(cpu, model, policy, tokens);
                for (int i = 0; i < PROMPTS.size(); i++) assertArrayEquals(want.get(i), got.get(i), "prompt " + i + " policy " + policy);
            }
        }
    }

    /** What the executor streams compressed and decompresses is, bit for bit, WeightCompression's round trip. */
    @Test
    void decompressedWeightsAreTheRoundTripsBits() {
        try (Model model = ModelLoader.load(SHARED.resolve("models/gutenberg-stories-llama-25m"), null); Arena a = Arena.ofConfined()) {
            for (Tensor t : List.of(model.weights().layers().get(0).wq(), model.weights().layers().get(3).down())) {
                MatrixShape m = MatrixShape.of(t);
                MemorySegment packed = a.allocate(WeightRounding.layout(m).packedBytes(), 64), out = a.allocate(2 * m.elements(), 64);
                WeightRounding.compress(t, dev.tandem.core.quant.WeightCompression.DEFAULT_RANGE, packed);
                WeightRounding.decompress(m, packed, out);
                Tensor want = WeightCompression.decompress(WeightCompression.compress(t, a), t.name(), WeightCompression.decompressedType(t.dtype()), a);
                assertEquals(-1L, out.mismatch(want.data()), t.name());
                assertTrue(packed.byteSize() < 0.3 * t.data().byteSize(), "4.5 bits per weight against bf16's 16");
            }
        }
    }

    /** Weights and cache compressed, weights partly on disk: the run completes and counts its tokens. */
    @Test
    void compressedWeightsAndCacheRun() {
        try (Model model = ModelLoader.load(SHARED.resolve("models/gutenberg-stories-llama-25m"), null); CpuBackend cpu = new CpuBackend(2)) {
            List<int[]> got = run(cpu, model, "2 2 0 50 0 100 0 100 compress-weight compress-cache", 8);
            for (int[] g : got) assertEquals(8, g.length);
        }
    }

    private List<int[]> run(CpuBackend cpu, Model model, String policy, int tokens) {
        try (CpuOffloadDevice device = new CpuOffloadDevice(cpu, 1L << 30); DiskStore disk = new DiskStore(tmp, 1L << 30);
             OffloadedGenerator g = new OffloadedGenerator(new LlamaProgram(model.config(), model.weights(), false), device,
                     OffloadPolicy.parse(policy), disk, 64, -1)) {
            List<OffloadedGenerator.Request> reqs = new ArrayList<>();
            for (int[] p : PROMPTS) reqs.add(new OffloadedGenerator.Request(p, tokens, SamplingParams.GREEDY));
            return g.generate(reqs, null);
        }
    }

    /** Greedy continuation with a GQ4 paged KV cache, one token per step. */
    private static int[] greedy(CpuBackend cpu, Model m, int[] prompt, int n) {
        var c = m.config();
        int blocks = 8;
        LlamaModel llama = new LlamaModel(c, m.weights(), cpu, 64, 1);
        KvStorage kv = cpu.allocateKv(new KvLayout(c.layers(), blocks, KvLayout.DEFAULT_BLOCK_SIZE, c.kvHeads(), c.headDim(), KvLayout.Format.GQ4));
        BlockTable table = new BlockTable(new BlockPool(blocks, KvLayout.DEFAULT_BLOCK_SIZE));
        int[] seq = Arrays.copyOf(prompt, prompt.length + n);
        int len = prompt.length;
        float[] row = new float[c.vocabSize()];
        int[] out = new int[n];
        for (int t = 0; t < n; t++) {
            int start = t == 0 ? 0 : len - 1, count = len - start;
            table.ensureCapacity(len);
            Activation logits = llama.forward(StepBatch.ofSequence(seq, start, count, table, count - 1), kv);
            cpu.read(logits, 0, row);
            int best = 0;
            for (int i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
            out[t] = best;
            seq[len++] = best;
        }
        return out;
    }
}
