package dev.tandem.core.format;

import dev.tandem.core.Golden;
import dev.tandem.core.TestModels;
import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.gguf.GgufModelWriter;
import dev.tandem.core.format.gguf.GgufVocab;
import dev.tandem.core.kv.BlockPool;
import dev.tandem.core.kv.BlockTable;
import dev.tandem.core.model.LlamaModel;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.StepBatch;
import dev.tandem.core.sampling.Sampler;
import dev.tandem.core.tensor.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** GGUF files written by `tandem convert` from the HF target model keep its greedy output. */
class GgufConversionTest {
    @TempDir
    static Path tmp;
    static Backend backend;

    @BeforeAll
    static void start() { backend = new CpuBackend(Runtime.getRuntime().availableProcessors()); }

    @AfterAll
    static void stop() { backend.close(); }

    static Path convert(DType type) throws Exception {
        Path out = tmp.resolve("g25-" + type + ".gguf");
        try (Model m = ModelLoader.load(TestModels.model("gutenberg-stories-llama-25m"), null)) {
            GgufModelWriter.write(out, m.config(), type, GgufVocab.of(m.tokenizer()), GgufModelWriter.sourceOf(m.weights()), "test");
        }
        return out;
    }

    /** Argmax after every position of prompt + golden continuation (teacher forcing). */
    static int[] teacherForcedArgmax(Model m, Golden.Prompt p) {
        int[] seq = new int[p.ids().length + p.targetIds().length - 1];
        System.arraycopy(p.ids(), 0, seq, 0, p.ids().length);
        System.arraycopy(p.targetIds(), 0, seq, p.ids().length, p.targetIds().length - 1);
        var c = m.config();
        LlamaModel llama = new LlamaModel(c, m.weights(), backend, seq.length, p.targetIds().length);
        BlockTable table = new BlockTable(new BlockPool(8, 16));
        table.ensureCapacity(seq.length);
        var kv = backend.allocateKv(new KvLayout(c.layers(), 8, 16, c.kvHeads(), c.headDim()));
        int[] rows = new int[p.targetIds().length];
        for (int i = 0; i < rows.length; i++) rows[i] = p.ids().length - 1 + i;
        Activation logits = llama.forward(StepBatch.ofSequence(seq, 0, seq.length, table, rows), kv);
        int[] out = new int[rows.length];
        float[] row = new float[c.vocabSize()];
        for (int i = 0; i < rows.length; i++) {
            backend.read(logits, i, row);
            out[i] = Sampler.argmax(row);
        }
        return out;
    }

    @Test
    void f32GgufGivesTheSameGreedyIdsAndTokenizer() throws Exception {
        try (Model m = ModelLoader.load(convert(DType.F32), null)) {
            assertEquals("GGUF v3", m.format());
            for (Golden.Prompt p : Golden.prompts()) {
                assertArrayEquals(p.ids(), m.tokenizer().encode(p.text(), true));
                assertArrayEquals(p.targetIds(), teacherForcedArgmax(m, p), "greedy ids for '" + p.text() + "'");
                assertEquals(p.targetText(), m.tokenizer().decode(p.targetIds()));
            }
        }
    }

    @Test
    void q8GgufAgreesOnAtLeast95PercentOfGreedyPositions() throws Exception {
        try (Model m = ModelLoader.load(convert(DType.Q8_0), null)) {
            int same = 0, total = 0;
            for (Golden.Prompt p : Golden.prompts()) {
                int[] got = teacherForcedArgmax(m, p);
                for (int i = 0; i < got.length; i++, total++) if (got[i] == p.targetIds()[i]) same++;
            }
            double agreement = same / (double) total;
            assertTrue(agreement >= 0.95, "Q8_0 greedy agreement " + agreement);
        }
    }
}
