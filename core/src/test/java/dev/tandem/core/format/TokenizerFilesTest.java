package dev.tandem.core.format;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.core.TestModels;
import dev.tandem.core.model.Model;
import dev.tandem.core.tokenizer.SentencePieceTokenizer;
import dev.tandem.core.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A tokenizer sent as its files (what a worker gives a router without --model) reads back as the loader's own. */
class TokenizerFilesTest {
    static final String TEXT = "Once upon a time, a little fox found a shiny key. \"What opens?\" she asked — 42 times!";

    static void assertSame(Tokenizer expected, Tokenizer actual) {
        assertEquals(expected.vocabSize(), actual.vocabSize());
        assertEquals(expected.bos(), actual.bos());
        assertEquals(expected.eos(), actual.eos());
        int[] ids = expected.encode(TEXT, true);
        assertArrayEquals(ids, actual.encode(TEXT, true));
        assertEquals(expected.decode(ids), actual.decode(ids));
    }

    @Test
    void aHuggingFaceTokenizerSentAsJsonReadsBackWithTheSameTokens() throws Exception {
        Path dir = TestModels.model("gutenberg-stories-llama-25m");
        TokenizerFiles files = TokenizerFiles.of(dir, null);
        assertEquals("tokenizer.json", files.main());
        assertEquals(Set.of("tokenizer.json", "tokenizer_config.json"), files.files().keySet());
        ObjectMapper json = new ObjectMapper(); // as the control plane carries it
        TokenizerFiles sent = json.readValue(json.writeValueAsBytes(files), TokenizerFiles.class);
        try (Model model = ModelLoader.load(dir, null)) {
            assertSame(model.tokenizer(), sent.load());
        }
    }

    @Test
    void aTokenizerFileGivenWithTheModelIsSentByItself() throws Exception {
        Path proto = TestModels.model("llama2-tokenizer-32000").resolve("tokenizer.model");
        TokenizerFiles files = TokenizerFiles.of(TestModels.model("stories260K").resolve("stories260K.bin"), proto);
        assertEquals(Set.of("tokenizer.model"), files.files().keySet());
        assertSame(SentencePieceTokenizer.fromModelProto(proto), files.load());
    }

    @Test
    void aCheckpointThatKeepsItsTokenizerElsewhereSaysToGiveTheRouterTheModel() {
        Path bin = TestModels.model("stories260K").resolve("stories260K.bin");
        var e = assertThrows(ModelFormatException.class, () -> TokenizerFiles.of(bin, null));
        assertTrue(e.getMessage().startsWith(bin + ": only a Hugging Face model's tokenizer") && e.getMessage().contains("--model"), e.getMessage());
    }
}
