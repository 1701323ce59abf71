package dev.tandem.core.model;

import dev.tandem.core.Golden;
import dev.tandem.core.TestModels;
import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.generate.Generator;
import dev.tandem.core.kv.BlockPool;
import dev.tandem.core.kv.BlockTable;
import dev.tandem.core.sampling.SamplingParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Greedy output of the real test models on the CPU backend equals the reference implementations'. */
class GoldenOutputTest {
    static Backend backend;

    @BeforeAll
    static void start() { backend = new CpuBackend(Runtime.getRuntime().availableProcessors()); }

    @AfterAll
    static void stop() { backend.close(); }

    /** Greedy continuation of {@code prompt}, {@code n} tokens, not stopped at EOS. */
    static int[] greedy(Model model, int[] prompt, int n) {
        LlamaModel llama = new LlamaModel(model.config(), model.weights(), backend, 64, 1);
        List<Integer> out = new ArrayList<>();
        new Generator(llama, model.config().contextLength()).generate(prompt, n, SamplingParams.GREEDY, false, -1, out::add);
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    @Test
    void stories260kMatchesLlama2cRunC() {
        try (Model m = ModelLoader.load(TestModels.model("stories260K").resolve("stories260K.bin"), null)) {
            int[] expected = Arrays.copyOfRange(Golden.STORIES260K_GREEDY, 1, Golden.STORIES260K_GREEDY.length);
            assertArrayEquals(expected, greedy(m, new int[] {1}, 64));
            int[] prompt = m.tokenizer().encode("Once upon a time", true);
            assertArrayEquals(new int[] {1, 403, 407, 261, 378}, prompt);
            // run.c -n 64 counts prompt positions too: 64 - 5 + 1 tokens after the prompt.
            String text = m.tokenizer().decode(greedy(m, prompt, 60));
            assertEquals(", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. "
                    + "She wanted to play with it, but it was too high.\nLily", text);
        }
    }

    @Test
    void llama2xsMatchesLlama2cRunC() {
        try (Model m = ModelLoader.load(TestModels.model("llama2xs-279K").resolve("llama2xs-279K.bin"), null)) {
            int[] expected = Arrays.copyOfRange(Golden.LLAMA2XS_GREEDY, 1, Golden.LLAMA2XS_GREEDY.length);
            assertArrayEquals(expected, greedy(m, new int[] {1}, 64));
        }
    }

    @Test
    void gutenbergTargetAndDraftMatchTransformersGreedyIds() {
        try (Model target = ModelLoader.load(TestModels.model("gutenberg-stories-llama-25m"), null);
             Model draft = ModelLoader.load(TestModels.model("gutenberg-stories-llama-3m"), null)) {
            for (Golden.Prompt p : Golden.prompts()) {
                assertArrayEquals(p.ids(), target.tokenizer().encode(p.text(), true), "prompt ids of '" + p.text() + "'");
                assertArrayEquals(p.targetIds(), greedy(target, p.ids(), 64), "target greedy ids for '" + p.text() + "'");
                assertEquals(p.targetText(), target.tokenizer().decode(p.targetIds()));
                assertArrayEquals(p.draftIds(), greedy(draft, p.ids(), 64), "draft greedy ids for '" + p.text() + "'");
            }
        }
    }

    @Test
    void gutenbergTop5LogitsWithin1e3OfTransformers() {
        Golden.Prompt p = Golden.prompts().get(0);
        int[] seq = new int[p.ids().length + p.targetIds().length];
        System.arraycopy(p.ids(), 0, seq, 0, p.ids().length);
        System.arraycopy(p.targetIds(), 0, seq, p.ids().length, p.targetIds().length);
        try (Model m = ModelLoader.load(TestModels.model("gutenberg-stories-llama-25m"), null)) {
            ModelConfig c = m.config();
            LlamaModel llama = new LlamaModel(c, m.weights(), backend, seq.length, seq.length);
            BlockPool pool = new BlockPool(8, 16);
            BlockTable table = new BlockTable(pool);
            assertTrue(table.ensureCapacity(seq.length));
            KvStorage kv = backend.allocateKv(new KvLayout(c.layers(), 8, 16, c.kvHeads(), c.headDim()));
            int[] rows = new int[seq.length];
            for (int i = 0; i < seq.length; i++) rows[i] = i;
            Activation logits = llama.forward(StepBatch.ofSequence(seq, 0, seq.length, table, rows), kv);
            float[] row = new float[c.vocabSize()];
            double worst = 0;
            for (Golden.Top5 t : p.targetTop5()) {
                assertEquals(seq[t.pos()], t.token());
                backend.read(logits, t.pos(), row);
                for (int j = 0; j < 5; j++) {
                    double rel = Math.abs(row[t.ids()[j]] - t.logits()[j]) / Math.max(1e-6, Math.abs(t.logits()[j]));
                    worst = Math.max(worst, rel);
                }
                int[] top = topK(row, 5);
                // Near-ties may swap order within float noise; the set of ids must agree where logits differ by > 1e-3.
                for (int j = 0; j < 5; j++) {
                    if (top[j] != t.ids()[j]) {
                        assertEquals(row[top[j]], row[t.ids()[j]], 1e-3 * Math.abs(t.logits()[j]), "top-5 order at position " + t.pos());
                    }
                }
            }
            assertTrue(worst <= 1e-3, "worst relative logit error " + worst);
        }
    }

    static int[] topK(float[] v, int k) {
        Integer[] idx = new Integer[v.length];
        for (int i = 0; i < v.length; i++) idx[i] = i;
        Arrays.sort(idx, (a, b) -> Float.compare(v[b], v[a]));
        int[] out = new int[k];
        for (int i = 0; i < k; i++) out[i] = idx[i];
        return out;
    }
}
