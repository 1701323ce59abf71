package dev.tandem.core.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.core.TestModels;
import dev.tandem.core.format.ModelFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * GPT-2's vocab.json + merges.txt (how facebook/opt-* ship their tokenizer) read into the byte-level BPE: the
 * 25M test model's tokenizer.json rewritten as those two files encodes text as tokenizer.json does.
 */
class GptVocabFilesTest {
    /** Words and spaces only: GPT-2's split pattern and the test tokenizer's Llama 3 one cut such text alike. */
    static final String TEXT = "Once upon a time there was a little girl who lived in a village near the forest";

    @Test
    void vocabAndMergesEncodeAsTheTokenizerJsonTheyCameFrom(@TempDir Path dir) throws IOException {
        Path model = TestModels.model("gutenberg-stories-llama-25m");
        JsonNode json = new ObjectMapper().readTree(Files.readString(model.resolve("tokenizer.json")));
        Files.writeString(dir.resolve("vocab.json"), json.path("model").path("vocab").toString());
        List<String> merges = new ArrayList<>(List.of("#version: 0.2"));
        for (JsonNode m : json.path("model").path("merges")) merges.add(m.asText());
        Files.write(dir.resolve("merges.txt"), merges);
        ByteLevelBpeTokenizer want = ByteLevelBpeTokenizer.fromHuggingFace(model);
        ByteLevelBpeTokenizer got = GptVocabFiles.read(dir, 0, 1, true);
        int[] ids = got.encode(TEXT, true);
        assertArrayEquals(want.encode(TEXT, true), ids);
        assertTrue(ids.length < TEXT.length() / 2, "merges were applied: " + ids.length + " ids");
        assertEquals(0, ids[0], "BOS in front");
        // Special tokens are cut out of the text literally, not spelled byte by byte.
        int[] withEos = got.encode("the end" + json.path("added_tokens").get(1).path("content").asText(), false);
        assertEquals(1, withEos[withEos.length - 1]);
    }

    @Test
    void aVocabularyWithAGapIsRefusedNamingThePiece(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("vocab.json"), "{\"a\": 0, \"b\": 2}");
        Files.writeString(dir.resolve("merges.txt"), "#version: 0.2\n");
        var e = assertThrows(ModelFormatException.class, () -> GptVocabFiles.read(dir, 0, 0, false));
        assertTrue(e.getMessage().contains("\"b\" has id 2"), e.getMessage());
    }
}
