package dev.tandem.offload.policy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelShapeTest {

    @Test
    void knownOptShapesHaveFlexGensSizes() {
        ModelShape m = ModelShape.known("facebook/opt-30b");
        assertEquals(48, m.layers());
        assertEquals(7168, m.hidden());
        assertEquals(56, m.heads());
        assertEquals(28672, m.ffn());
        assertEquals(50272, m.vocab());
        assertEquals(2048, m.maxSeqLen());
        // FlexGen's wi = 8 h1^2 + 4 h1 h2 and its "weights size: 55.1250 GB" for 48 layers
        assertEquals(8.0 * 7168 * 7168 + 4.0 * 7168 * 28672, m.layerWeightBytes(), 0);
        assertEquals(55.125, 48 * m.layerWeightBytes() / HardwareProfile.GIB, 1e-9);
        assertEquals(4.0 * 7168, m.kvBytesPerToken(), 0);
    }

    @Test
    void llamaShapesCountGroupedQueryAttention() {
        ModelShape m = ModelShape.known("llama-3-70b");
        assertEquals(8 * 128, m.kvDim());
        // 70.6e9 parameters with embeddings; the layers alone 68.5e9
        assertEquals(68.5e9, m.layers() * (double) m.layerParameters(), 0.1e9);
    }

    @Test
    void readsLlamaConfigFromAModelDirectory() {
        ModelShape m = ModelShape.resolve(System.getProperty("tandem.shared", "../../shared") + "/models/gutenberg-stories-llama-25m");
        assertEquals(8, m.layers());
        assertEquals(448, m.hidden());
        assertEquals(4, m.kvHeads());
        assertEquals(1216, m.ffn());
        assertEquals(3, m.mlpMatrices());
        assertEquals(2, m.bytesPerWeight());
    }

    @Test
    void readsOptConfig(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("config.json"), """
                {"model_type": "opt", "architectures": ["OPTForCausalLM"], "num_hidden_layers": 32, "hidden_size": 4096,
                 "num_attention_heads": 32, "ffn_dim": 16384, "vocab_size": 50272, "max_position_embeddings": 2048,
                 "torch_dtype": "float16"}""");
        ModelShape m = ModelShape.resolve(dir.toString());
        ModelShape ref = ModelShape.known("opt-6.7b");
        assertEquals(ref.layerWeightBytes(), m.layerWeightBytes(), 0);
        assertEquals(ref.kvBytesPerToken(), m.kvBytesPerToken(), 0);
    }

    @Test
    void unknownNameListsTheKnownOnes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelShape.resolve("opt-31b"));
        assertTrue(e.getMessage().contains("unknown model 'opt-31b'") && e.getMessage().contains("opt-30b, opt-66b"), e.getMessage());
    }

    @Test
    void directoryWithoutConfigIsAnError(@TempDir Path dir) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelShape.resolve(dir.toString()));
        assertTrue(e.getMessage().contains("no config.json"), e.getMessage());
    }
}
