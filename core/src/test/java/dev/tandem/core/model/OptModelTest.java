package dev.tandem.core.model;

import dev.tandem.core.OptTestModels;
import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.AttentionBatch;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.backend.reference.ReferenceBackend;
import dev.tandem.core.format.ModelFormatException;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.format.hf.HfConfig;
import dev.tandem.core.kv.BlockPool;
import dev.tandem.core.kv.BlockTable;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** OPT's forward pass on the CPU backend against the scalar reference, on a random opt-tiny written by Tandem's writer. */
class OptModelTest {
    static Model model;
    static final int[] PROMPT = {0, 5, 77, 300, 12, 12, 400, 511, 3, 9, 100, 200, 250, 17, 42, 8, 19, 64, 128, 256};

    @BeforeAll
    static void load() {
        model = ModelLoader.load(OptTestModels.folder("opt-tiny", OptShapes.of("opt-tiny"), OptTestModels.GOLDEN_SEED), null);
    }

    @AfterAll
    static void close() {
        if (model != null) model.close();
    }

    @Test
    void theLoaderReadsAnOptFolderAsOpt() {
        ModelConfig c = model.config();
        assertTrue(c.isOpt());
        assertEquals(OptShapes.of("opt-tiny").dim(), c.dim());
        assertEquals(c.contextLength() + 2, model.weights().positions().rows());
        assertEquals(model.weights().embedding(), model.weights().output(), "OPT ties the output head to the embedding");
        try (Backend b = new ReferenceBackend()) {
            assertInstanceOf(OptModel.class, DecoderModel.create(c, model.weights(), b, 4, 1));
        }
    }

    @Test
    void cpuLogitsMatchTheReferenceBackend() {
        float[][] want, got;
        try (Backend ref = new ReferenceBackend(); Backend cpu = new CpuBackend(2)) {
            want = OptTestModels.logits(ref, model, PROMPT);
            got = OptTestModels.logits(cpu, model, PROMPT);
        }
        double err = OptTestModels.relativeError(want, got);
        assertTrue(err <= 1e-5, "CPU logits differ from the reference by " + err + " of their scale");
    }

    @Test
    void greedyIdsOnCpuEqualTheReferenceAndDoNotDependOnChunking() {
        int[] ref, whole, chunked;
        try (Backend r = new ReferenceBackend()) {
            ref = OptTestModels.greedy(r, model, PROMPT, 24, 64);
        }
        try (Backend cpu = new CpuBackend(2)) {
            whole = OptTestModels.greedy(cpu, model, PROMPT, 24, 64);
            chunked = OptTestModels.greedy(cpu, model, PROMPT, 24, 7); // prefill in chunks of 7 over cached context
        }
        assertArrayEquals(ref, whole);
        assertArrayEquals(ref, chunked);
    }

    /**
     * One step mixing a decode token of one sequence with the prefill of another (different block tables, positions
     * and context lengths) gives each row what it gets alone.
     */
    @Test
    void aMixedBatchGivesEachSequenceWhatItGetsAlone() {
        ModelConfig c = model.config();
        int[] a = java.util.Arrays.copyOf(PROMPT, 13), b = {0, 44, 45, 46, 47, 48, 49, 50, 51};
        try (Backend cpu = new CpuBackend(2)) {
            float[][] aloneA = OptTestModels.logits(cpu, model, a), aloneB = OptTestModels.logits(cpu, model, b);
            DecoderModel m = DecoderModel.create(c, model.weights(), cpu, 32, 2);
            BlockPool pool = new BlockPool(8, 4);
            KvStorage kv = cpu.allocateKv(new KvLayout(c.layers(), 8, 4, c.kvHeads(), c.headDim()));
            BlockTable ta = new BlockTable(pool), tb = new BlockTable(pool);
            ta.ensureCapacity(a.length);
            tb.ensureCapacity(b.length);
            m.forward(StepBatch.ofSequence(a, 0, a.length - 1, ta, a.length - 2), kv);
            // Row 0: a's last token (decode at position 12); rows 1..9: b's prompt.
            int n = 1 + b.length;
            int[] tokens = new int[n], positions = new int[n], slots = new int[n];
            tokens[0] = a[a.length - 1];
            positions[0] = a.length - 1;
            slots[0] = ta.slot(a.length - 1);
            for (int i = 0; i < b.length; i++) {
                tokens[1 + i] = b[i];
                positions[1 + i] = i;
                slots[1 + i] = tb.slot(i);
            }
            List<AttentionBatch.Seq> seqs = List.of(new AttentionBatch.Seq(0, 1, a.length, ta.blocks()),
                    new AttentionBatch.Seq(1, b.length, b.length, tb.blocks()));
            Activation logits = m.forward(new StepBatch(tokens, positions, slots, seqs, new int[] {0, n - 1}), kv);
            float[][] mixed = new float[2][c.vocabSize()];
            cpu.read(logits, 0, mixed[0]);
            cpu.read(logits, 1, mixed[1]);
            assertTrue(OptTestModels.relativeError(new float[][] {aloneA[a.length - 1]}, new float[][] {mixed[0]}) <= 1e-5, "decode row");
            assertTrue(OptTestModels.relativeError(new float[][] {aloneB[b.length - 1]}, new float[][] {mixed[1]}) <= 1e-5, "prefill row");
        }
    }

    @Test
    void theKvHookSeesEveryLayerInOrder() {
        ModelConfig c = model.config();
        try (Backend cpu = new CpuBackend(1)) {
            DecoderModel m = DecoderModel.create(c, model.weights(), cpu, 8, 1);
            KvStorage kv = cpu.allocateKv(new KvLayout(c.layers(), 1, 16, c.kvHeads(), c.headDim()));
            BlockTable t = new BlockTable(new BlockPool(1, 16));
            t.ensureCapacity(4);
            List<Integer> seen = new ArrayList<>();
            m.forward(StepBatch.ofSequence(PROMPT, 0, 4, t, 3), kv, seen::add);
            assertEquals(List.of(0, 1), seen);
        }
    }

    @Test
    void positionsPastTheLearnedTableAreRefused() {
        ModelConfig c = model.config();
        try (Backend cpu = new CpuBackend(1)) {
            DecoderModel m = DecoderModel.create(c, model.weights(), cpu, 2, 1);
            int blocks = Math.ceilDiv(c.contextLength() + 1, 16);
            KvStorage kv = cpu.allocateKv(new KvLayout(c.layers(), blocks, 16, c.kvHeads(), c.headDim()));
            BlockTable t = new BlockTable(new BlockPool(blocks, 16));
            t.ensureCapacity(c.contextLength() + 1);
            int[] seq = new int[c.contextLength() + 1];
            var e = assertThrows(IllegalArgumentException.class, () -> m.forward(StepBatch.ofSequence(seq, c.contextLength(), 1, t, 0), kv));
            assertTrue(e.getMessage().contains("position " + c.contextLength()), e.getMessage());
        }
    }

    @Test
    void opt350mIsRefusedNamingTheField(@TempDir Path dir) throws IOException {
        String config = Files.readString(configOf());
        Path post = dir.resolve("config.json");
        Files.writeString(post, config.replace("\"do_layer_norm_before\" : true", "\"do_layer_norm_before\" : false"));
        var e = assertThrows(ModelFormatException.class, () -> HfConfig.read(post));
        assertTrue(e.getMessage().contains("do_layer_norm_before"), e.getMessage());
        Files.writeString(post, config.replace("\"word_embed_proj_dim\" : 64", "\"word_embed_proj_dim\" : 32"));
        e = assertThrows(ModelFormatException.class, () -> HfConfig.read(post));
        assertTrue(e.getMessage().contains("word_embed_proj_dim 32"), e.getMessage());
    }

    private static Path configOf() {
        return OptTestModels.folder("opt-tiny", OptShapes.of("opt-tiny"), OptTestModels.GOLDEN_SEED).resolve("config.json");
    }
}
