package dev.tandem.core.tokenizer;

import dev.tandem.core.TestModels;
import org.junit.jupiter.api.Test;

import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.*;

class StreamDecoderTest {
    private static final String TEXT = "日本🙂";

    @Test
    void neverEmitsHalfACharacterFromByteFallbackTokens() throws Exception {
        Tokenizer t = SentencePieceTokenizer.fromLlama2cBin(TestModels.model("stories260K").resolve("tok512.bin"));
        int[] ids = t.encode(TEXT, true);
        // BOS, the dummy-prefix space, then one byte token per UTF-8 byte (3 + 3 + 4).
        assertEquals(2 + 10, ids.length);
        assertStreamsCleanly(t, ids, TEXT);
    }

    @Test
    void neverEmitsHalfACharacterFromByteLevelTokens() throws Exception {
        Tokenizer t = ByteLevelBpeTokenizer.fromHuggingFace(TestModels.model("gutenberg-stories-llama-25m"));
        String text = TEXT + " and 🙂🙂 ünïcode";
        assertStreamsCleanly(t, t.encode(text, true), text);
    }

    @Test
    void heldBackBytesAreFlushedAsReplacement() throws Exception {
        Tokenizer t = SentencePieceTokenizer.fromLlama2cBin(TestModels.model("stories260K").resolve("tok512.bin"));
        StreamDecoder d = new StreamDecoder(t).after(t.bos());
        assertEquals("", d.next(0xE6 + 3)); // first byte of 日 alone
        assertEquals("\uFFFD", d.flush());
        assertEquals("", d.flush());
    }

    @Test
    void completePrefixStopsBeforeAnUnfinishedSequence() {
        byte[] b = "a🙂".getBytes(StandardCharsets.UTF_8);
        for (int cut = 1; cut < b.length; cut++) {
            assertEquals(1, StreamDecoder.completePrefix(java.util.Arrays.copyOf(b, cut)), "cut " + cut);
        }
        assertEquals(b.length, StreamDecoder.completePrefix(b));
    }

    private static void assertStreamsCleanly(Tokenizer t, int[] ids, String expected) throws CharacterCodingException {
        StreamDecoder d = new StreamDecoder(t);
        StringBuilder all = new StringBuilder();
        for (int id : ids) {
            String chunk = d.next(id);
            assertFalse(chunk.contains("\uFFFD"), "chunk after " + id + " has a replacement character");
            // A valid chunk re-encodes without error: no lone surrogates.
            StandardCharsets.UTF_8.newEncoder().onMalformedInput(CodingErrorAction.REPORT)
                    .encode(java.nio.CharBuffer.wrap(chunk));
            all.append(chunk);
        }
        assertEquals("", d.flush());
        assertEquals(expected, all.toString());
        assertEquals(expected, t.decode(ids));
    }

}
