package dev.tandem.offload.exec;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.cuda.CudaDriver;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.offload.policy.OffloadPolicy;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Offloaded generation on the GPU (f32 precision, so that the reference is HF's f32 greedy output): weights resident,
 * streamed from pinned memory or read from disk, the KV cache on the GPU or in host memory with attention on the GPU
 * or the CPU, give HF's greedy tokens for the 25m model.
 */
class OffloadedGeneratorCudaTest {
    static final Path SHARED = Path.of(System.getProperty("tandem.shared", "../../shared"));

    @TempDir
    Path tmp;

    /**
     * Weight compression on the GPU path agrees with itself across placements: weights streamed 4-bit and decompressed
     * by the GPU kernel equal weights rounded on the host and kept resident (the same values, the same GEMMs).
     */
    @org.junit.jupiter.api.Test
    void compressedWeightsGiveTheSameTokensWhereverTheyAreUndone() throws Exception {
        String why = CudaDriver.unavailableReason();
        assumeTrue(why == null, "no CUDA GPU here (" + why + ")");
        assertArrayEquals(flatten(run("3 2 100 0 100 0 100 0 compress-weight")), flatten(run("3 2 0 60 100 0 100 0 compress-weight")),
                "weights resident (rounded on the host) vs streamed (decompressed on the GPU)");
    }

    /**
     * A GQ4 host cache attended on the CPU (decompressed position by position, {@link HostAttention}) and on the GPU
     * (decompressed into the device's cache by the batched transfer, then the GPU's attention kernel) gives the same
     * attention up to float rounding. The two sum in different orders, so greedy tokens over the two may part at a
     * near-tie after many steps (they did: the 17th token of one of six sequences), which is why this compares the
     * attention itself, within a bound, rather than tokens.
     */
    @org.junit.jupiter.api.Test
    void aGq4CacheGivesTheSameAttentionOnTheGpuAsOnTheCpu() {
        String why = CudaDriver.unavailableReason();
        assumeTrue(why == null, "no CUDA GPU here (" + why + ")");
        int heads = 8, kvHeads = 4, hd = 56, capacity = 128, bs = dev.tandem.core.backend.KvLayout.DEFAULT_BLOCK_SIZE; // the 25m model's heads
        int[] lens = {37, 64, 101};
        int n = lens.length, qDim = heads * hd, kvDim = kvHeads * hd;
        float scale = (float) (1.0 / Math.sqrt(hd));
        java.util.Random rnd = new java.util.Random(7);
        try (CudaBackend backend = new CudaBackend(0, CudaBackend.Precision.F32, false);
             CudaOffloadDevice device = new CudaOffloadDevice(backend, 1L << 28, 1L << 28);
             dev.tandem.core.backend.cpu.CpuThreadPool pool = new dev.tandem.core.backend.cpu.CpuThreadPool(2, 0)) {
            HostKvCache cache = new HostKvCache(device.host(), 1, n, capacity, kvHeads, hd, HostKvCache.Format.GQ4);
            java.lang.foreign.MemorySegment row = device.host().allocate(4L * kvDim);
            float[] scratch = new float[kvDim];
            for (int s = 0; s < n; s++) {
                for (int p = 0; p < lens[s]; p++) {
                    for (java.lang.foreign.MemorySegment part : new java.lang.foreign.MemorySegment[] {cache.keys(0), cache.values(0)}) {
                        for (int i = 0; i < kvDim; i++) row.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, i, (float) rnd.nextGaussian());
                        cache.store(row, 0, part, cache.offset(s, p), scratch);
                    }
                }
            }
            java.lang.foreign.MemorySegment q = device.host().allocate(4L * n * qDim), onCpu = device.host().allocate(4L * n * qDim),
                    onGpu = device.host().allocate(4L * n * qDim);
            for (long i = 0; i < (long) n * qDim; i++) q.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, i, (float) rnd.nextGaussian());
            int[] seqs = new int[n], positions = new int[n], slots = new int[n], tokens = new int[n];
            List<dev.tandem.core.backend.AttentionBatch.Seq> abSeqs = new ArrayList<>();
            for (int s = 0; s < n; s++) {
                seqs[s] = s;
                positions[s] = lens[s] - 1;
                slots[s] = s * capacity + lens[s] - 1;
                int[] table = new int[capacity / bs];
                for (int b = 0; b < table.length; b++) table[b] = s * table.length + b;
                abSeqs.add(new dev.tandem.core.backend.AttentionBatch.Seq(s, 1, lens[s], table));
            }
            HostAttention.run(pool, q, 0, qDim, cache, 0, seqs, positions, heads, kvHeads, hd, scale, onCpu);

            dev.tandem.core.backend.KvStorage kv = backend.allocateKv(new dev.tandem.core.backend.KvLayout(1, n * capacity / bs, bs, kvHeads, hd));
            device.kvFromHost(cache, 0, 0, n, capacity, kv, 0); // every slot: one strided transfer, one decompression launch each for K and V
            dev.tandem.core.backend.AttentionBatch ab = new dev.tandem.core.backend.AttentionBatch(abSeqs, heads, kvHeads, hd, scale);
            backend.beginStep(tokens, positions, slots, ab, capacity / bs);
            dev.tandem.core.backend.Activation qa = backend.allocate(n, qDim), out = backend.allocate(n, qDim);
            device.fromHost(q, 0, qa, n);
            backend.attention(qa, kv, 0, ab, out);
            device.toHost(out, n, onGpu, 0);
            device.synchronize();
            double worst = 0, norm = 0;
            for (long i = 0; i < (long) n * qDim; i++) {
                float c = onCpu.getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, i), g = onGpu.getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, i);
                worst = Math.max(worst, Math.abs(c - g));
                norm = Math.max(norm, Math.abs(c));
            }
            System.out.printf("GQ4 attention, GPU vs CPU: max |difference| %.3g, max |value| %.3g%n", worst, norm);
            assertTrue(norm > 0.05, "the attention is not all zeros (max |value| " + norm + ")");
            assertTrue(worst <= 1e-5 * Math.max(1, norm) * 10, "GPU and CPU attention over one GQ4 cache differ by " + worst + " (max |value| " + norm + ")");
        }
    }

    /**
     * Prompts of one length (FlexGen's batch jobs) move a GPU batch's host cache layer in one strided copy each way
     * (GQ4: one (de)compression launch for all its sequences); that gives the tokens of the cache kept on the GPU
     * (f32: the same values), and compressed, the very tokens of the sequence-by-sequence transfers (the same bits).
     */
    @org.junit.jupiter.api.Test
    void batchedCacheTransfersGiveTheSequenceBySequenceTokens() throws Exception {
        String why = CudaDriver.unavailableReason();
        assumeTrue(why == null, "no CUDA GPU here (" + why + ")");
        List<int[]> prompts = prompts();
        int len = prompts.stream().mapToInt(p -> p.length).min().orElseThrow();
        List<int[]> same = new ArrayList<>(); // two GPU batches of three
        for (int[] p : prompts) same.add(Arrays.copyOf(p, len));
        for (int[] p : prompts) same.add(Arrays.copyOfRange(p, p.length - len, p.length));
        assertArrayEquals(flatten(run("3 2 100 0 100 0 100 0", same, 24)), flatten(run("3 2 0 100 0 100 0 100", same, 24)),
                "f32 cache on the GPU vs in host memory, moved per GPU batch");
        List<int[]> batched = run("3 2 0 100 0 100 0 100 compress-cache", same, 24), perSequence;
        PipelineStage.batchKvTransfers = false;
        try {
            perSequence = run("3 2 0 100 0 100 0 100 compress-cache", same, 24);
        } finally {
            PipelineStage.batchKvTransfers = true;
        }
        assertArrayEquals(flatten(perSequence), flatten(batched), "GQ4 cache moved per GPU batch vs per sequence");
    }

    private static int[] flatten(List<int[]> out) { return out.stream().flatMapToInt(java.util.Arrays::stream).toArray(); }

    private List<int[]> run(String policy) throws Exception { return run(policy, prompts(), 24); }

    private static List<int[]> prompts() throws java.io.IOException { return golden("prompt_ids"); }

    private static List<int[]> golden(String field) throws java.io.IOException {
        JsonNode root = new ObjectMapper().readTree(SHARED.resolve("models/gutenberg-stories/golden.json").toFile());
        ObjectMapper m = new ObjectMapper();
        List<int[]> out = new ArrayList<>();
        for (JsonNode p : root.path("prompts")) out.add(m.convertValue(field.equals("prompt_ids") ? p.path(field) : p.path("target").path(field), int[].class));
        return out;
    }

    /** Greedy tokens of the golden prompts under a policy, on the GPU at f32. */
    private List<int[]> run(String policy, List<int[]> prompts, int tokens) throws Exception {
        List<OffloadedGenerator.Request> reqs = new ArrayList<>();
        for (int[] ids : prompts) reqs.add(new OffloadedGenerator.Request(ids, tokens, SamplingParams.GREEDY));
        try (Model model = ModelLoader.load(SHARED.resolve("models/gutenberg-stories-llama-25m"), null);
             CudaBackend backend = new CudaBackend(0, CudaBackend.Precision.F32, false);
             CudaOffloadDevice device = new CudaOffloadDevice(backend, 1L << 30, 1L << 30);
             DiskStore disk = new DiskStore(tmp, 1L << 30);
             OffloadedGenerator g = new OffloadedGenerator(new LlamaProgram(model.config(), model.weights(), true), device,
                     OffloadPolicy.parse(policy), disk, 8, -1)) {
            return g.generate(reqs, null);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {
            "8 1 100 0 100 0 100 0",
            "2 3 0 100 0 100 0 100",
            "3 2 20 50 0 100 0 100 cpu-cache-compute",
            "4 2 0 100 50 50 100 0",
            "2 2 0 0 0 100 0 100 cpu-cache-compute",
    })
    void greedyTokensMatchHuggingFace(String policy) throws Exception {
        String why = CudaDriver.unavailableReason();
        if (why != null) System.err.println("OffloadedGeneratorCudaTest skipped: no CUDA GPU here (" + why + "); it runs on the GPU machine");
        assumeTrue(why == null, "no CUDA GPU here (" + why + ")");
        List<int[]> prompts = prompts(), golden = golden("generated_ids");
        int tokens = 48;
        List<int[]> out = run(policy, prompts, tokens);
        for (int i = 0; i < prompts.size(); i++) {
            assertArrayEquals(Arrays.copyOf(golden.get(i), tokens), out.get(i), "prompt " + i + " under policy " + policy);
        }
    }
}
