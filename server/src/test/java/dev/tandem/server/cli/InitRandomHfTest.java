package dev.tandem.server.cli;

import dev.tandem.core.backend.Rope;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.format.hf.HfModelFiles;
import dev.tandem.core.format.hf.HfModelWriter;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.RandomWeights;
import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `tandem init-random` in the Hugging Face layout, on a tiny 2-layer configuration written by the test. */
class InitRandomHfTest {
    static final int DIM = 64, HIDDEN = 160, HEADS = 4, KV_HEADS = 2, HEAD_DIM = 16, VOCAB = 300;

    @TempDir Path tmp;

    private Path config() throws IOException {
        Path p = tmp.resolve("tiny.json");
        Files.writeString(p, """
                {"architectures": ["LlamaForCausalLM"], "hidden_size": %d, "intermediate_size": %d, "num_hidden_layers": 2,
                 "num_attention_heads": %d, "num_key_value_heads": %d, "vocab_size": %d, "max_position_embeddings": 128,
                 "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "bos_token_id": 0, "eos_token_id": 1}
                """.formatted(DIM, HIDDEN, HEADS, KV_HEADS, VOCAB));
        return p;
    }

    private Path write(String name, String... extra) throws IOException {
        Path out = tmp.resolve(name);
        List<String> args = new ArrayList<>(List.of("init-random", "--config", config().toString(), "--dtype", "bf16", "--out", out.toString()));
        args.addAll(List.of(extra));
        CliTest.Result r = CliTest.run(args.toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("GB/s"), r.err());
        return out;
    }

    @Test
    void writesAFolderThatTheLoaderReadsWithHuggingFaceNamesShapesAndRotateHalfRope() throws IOException {
        Path dir = write("m", "--seed", "7");
        for (String f : new String[] {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"}) {
            assertTrue(Files.exists(dir.resolve(f)), f);
        }
        try (Arena arena = Arena.ofConfined()) {
            Map<String, Tensor> t = HfModelFiles.open(dir, arena).tensors;
            assertEquals(2 + 2 * 9 + 1, t.size(), t.keySet().toString());
            assertArrayEquals(new long[] {VOCAB, DIM}, t.get("model.embed_tokens.weight").shape());
            assertArrayEquals(new long[] {VOCAB, DIM}, t.get("lm_head.weight").shape());
            assertArrayEquals(new long[] {HEADS * HEAD_DIM, DIM}, t.get("model.layers.1.self_attn.q_proj.weight").shape());
            assertArrayEquals(new long[] {KV_HEADS * HEAD_DIM, DIM}, t.get("model.layers.1.self_attn.k_proj.weight").shape());
            assertArrayEquals(new long[] {DIM, HIDDEN}, t.get("model.layers.0.mlp.down_proj.weight").shape());
            assertArrayEquals(new long[] {DIM}, t.get("model.layers.0.input_layernorm.weight").shape());
            assertArrayEquals(new long[] {DIM}, t.get("model.norm.weight").shape());
            for (Tensor x : t.values()) assertEquals(DType.BF16, x.dtype(), x.name());
        }
        try (Model m = ModelLoader.load(dir, null)) {
            assertEquals(Rope.Style.HALF, m.config().ropeStyle(), "LlamaForCausalLM weights pair RoPE dimensions as rotate-half");
            assertEquals(VOCAB, m.tokenizer().vocabSize());
            assertEquals(0, m.tokenizer().bos());
            assertEquals(1, m.tokenizer().eos());
            int[] ids = m.tokenizer().encode("hi!", true);
            assertEquals(4, ids.length, "BOS then one id per byte (no merges)");
            assertEquals(0, ids[0]);
            assertEquals("hi!", m.tokenizer().decode(ids));
            assertEquals(" t299", m.tokenizer().decode(new int[] {299}), "synthetic pieces fill the vocabulary up to its size");
        }
    }

    @Test
    void theBytesDependOnTheSeedOnlyNotOnTheThreadCount() throws IOException {
        byte[] one = Files.readAllBytes(write("t1", "--seed", "3", "--threads", "1").resolve("model.safetensors"));
        byte[] three = Files.readAllBytes(write("t3", "--seed", "3", "--threads", "3").resolve("model.safetensors"));
        byte[] again = Files.readAllBytes(write("t1b", "--seed", "3", "--threads", "1").resolve("model.safetensors"));
        byte[] other = Files.readAllBytes(write("s4", "--seed", "4", "--threads", "1").resolve("model.safetensors"));
        assertArrayEquals(one, three);
        assertArrayEquals(one, again);
        assertEquals(one.length, other.length);
        assertFalse(java.util.Arrays.equals(one, other), "another seed gives other weights");
    }

    @Test
    void matricesAreNormalWithStdTwoHundredthsAndNormsAreOne() throws IOException {
        Path dir = write("stats", "--seed", "11", "--dtype", "f32");
        try (Arena arena = Arena.ofConfined()) {
            for (Tensor t : HfModelFiles.open(dir, arena).tensors.values()) {
                int n = Math.toIntExact(t.data().byteSize() / 4);
                float[] v = new float[n];
                Codec.decode(t.dtype(), t.data(), 0, v, 0, n);
                if (t.name().endsWith("norm.weight")) {
                    for (float x : v) assertEquals(1f, x, t.name());
                    continue;
                }
                double sum = 0, sq = 0;
                for (float x : v) { sum += x; sq += (double) x * x; }
                double mean = sum / n, std = Math.sqrt(sq / n - mean * mean);
                // at least 4096 values: 5 standard errors of the mean (0.02 / 64) and of the std (0.02 / 90)
                assertEquals(0, mean, 5 * 0.02 / Math.sqrt(n), t.name() + " mean");
                assertEquals(RandomWeights.STD, std, 5 * 0.02 / Math.sqrt(2.0 * n) + 1e-4, t.name() + " std");
            }
        }
    }

    @Test
    void generateAndLogitsRunOnTheWrittenFolder() throws IOException {
        Path dir = write("gen", "--seed", "5");
        CliTest.Result g = CliTest.run("generate", "--model", dir.toString(), "--prompt", "Once", "--max-tokens", "6",
                "--temperature", "0", "--ignore-eos");
        assertEquals(0, g.code(), g.err());
        assertTrue(g.err().contains("generated: 6 tokens"), g.err());
        Path logits = tmp.resolve("logits.f32");
        CliTest.Result l = CliTest.run("logits", "--model", dir.toString(), "--ids", "0,5,299", "--out", logits.toString());
        assertEquals(0, l.code(), l.err());
        assertEquals(3L * VOCAB * 4, Files.size(logits));
    }

    @Test
    void largeModelsAreShardedWithAnIndexAndLoadTheSame() throws IOException {
        Path single = write("single", "--seed", "2");
        var c = dev.tandem.core.format.hf.HfConfig.read(single.resolve("config.json"));
        Path sharded = tmp.resolve("sharded");
        Files.createDirectories(sharded);
        for (String f : new String[] {"config.json", "tokenizer.json", "tokenizer_config.json"}) Files.copy(single.resolve(f), sharded.resolve(f));
        HfModelWriter.Written w = HfModelWriter.write(sharded, c, DType.BF16,
                (name, first, count, cols, dst) -> RandomWeights.rows(2, name, first, count, cols, dst), 40_000, 2);
        assertTrue(w.files().size() > 3, w.files().toString());
        assertTrue(w.files().get(0).getFileName().toString().matches("model-00001-of-000\\d\\d\\.safetensors"), w.files().toString());
        assertTrue(Files.exists(sharded.resolve("model.safetensors.index.json")));
        assertFalse(Files.exists(sharded.resolve("model.safetensors")));
        try (Arena arena = Arena.ofConfined()) {
            Map<String, Tensor> a = HfModelFiles.open(single, arena).tensors, b = HfModelFiles.open(sharded, arena).tensors;
            assertEquals(a.keySet(), b.keySet());
            for (String name : a.keySet()) assertEquals(-1, a.get(name).data().mismatch(b.get(name).data()), name);
        }
        try (Model m = ModelLoader.load(sharded, null)) {
            assertEquals(2, m.config().layers());
        }
    }

    @Test
    void llama3RopeScalingOfTheInputConfigIsWrittenBack() throws IOException {
        Path in = tmp.resolve("scaled.json");
        Files.writeString(in, Files.readString(config()).replace("\"rope_theta\": 10000.0,", "\"rope_theta\": 500000.0, \"rope_parameters\": "
                + "{\"rope_type\": \"llama3\", \"rope_theta\": 500000.0, \"factor\": 8.0, \"low_freq_factor\": 1.0, "
                + "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 32},"));
        Path out = tmp.resolve("scaled");
        CliTest.Result r = CliTest.run("init-random", "--config", in.toString(), "--dtype", "f16", "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        var expected = dev.tandem.core.format.hf.HfConfig.read(in);
        try (Model m = ModelLoader.load(out, null)) {
            assertArrayEquals(expected.ropeInvFreq(), m.config().ropeInvFreq());
            assertEquals(500000.0, m.config().ropeTheta());
        }
        assertTrue(Files.readString(out.resolve("config.json")).contains("\"llama3\""));
    }

    @Test
    void quantizedTypesAreRefusedForTheHuggingFaceLayout() throws IOException {
        CliTest.Result r = CliTest.run("init-random", "--config", config().toString(), "--dtype", "q8_0", "--out", tmp.resolve("q").toString());
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("bf16, f16 or f32"), r.err());
    }
}
