package dev.tandem.core.tokenizer;

import dev.tandem.core.TestModels;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class SentencePieceTokenizerTest {
    private static final Path TOK512 = TestModels.model("stories260K").resolve("tok512.bin");
    private static final Path LLAMA2 = TestModels.model("llama2-tokenizer-32000");

    /** Greedy ids of stories260K from its README (BOS + 64 generated tokens), checked against run.c. */
    private static final int[] STORIES260K_GREEDY = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421,
            395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328,
            432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312,
            286, 267, 414, 270, 333, 415, 426, 13, 438, 310};

    private static final List<String> TEXTS = List.of(
            "Once upon a time",
            "héllo wörld 日本 🙂",
            "line one\nline two\n\n  indented   with   spaces\t tab",
            "  leading and trailing spaces  ",
            "don't I'LL 12345 3.14159 $100 (x+y)=z",
            "Ünïcödé ☃ Ελληνικά русский 한국어 עברית",
            "\r\n\n  \t x",
            "a",
            " ",
            "▁literal space mark▁");

    @Test
    void tok512EncodesPromptWithBosAsRunC() throws Exception {
        Tokenizer t = SentencePieceTokenizer.fromLlama2cBin(TOK512);
        assertEquals(512, t.vocabSize());
        assertEquals(1, t.bos());
        assertEquals(2, t.eos());
        assertArrayEquals(new int[] {1, 403, 407, 261, 378}, t.encode("Once upon a time", true));
        assertArrayEquals(new int[] {403, 407, 261, 378}, t.encode("Once upon a time", false));
    }

    @Test
    void tok512DecodesGreedySampleOfStories260K() throws Exception {
        Tokenizer t = SentencePieceTokenizer.fromLlama2cBin(TOK512);
        String text = t.decode(Arrays.copyOfRange(STORIES260K_GREEDY, 1, STORIES260K_GREEDY.length));
        // Without the BOS before it, the first piece keeps its dummy-prefix space (run.c's rule is after BOS only).
        assertTrue(text.startsWith(" Once upon a time, there was a little girl named Lily. She loved to play outside"
                + " in the park. One day, she saw a big, red ball."), text);
        String withBos = t.decode(STORIES260K_GREEDY);
        assertTrue(withBos.startsWith("Once upon a time, there was a little girl named Lily. She loved to play outside"
                + " in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n"
                + "Lily"), withBos);
    }

    @Test
    void emptyTextIsJustBos() throws Exception {
        Tokenizer t = SentencePieceTokenizer.fromLlama2cBin(TOK512);
        assertArrayEquals(new int[] {1}, t.encode("", true));
        assertArrayEquals(new int[0], t.encode("", false));
    }

    @Test
    void controlTokensDecodeToNothing() throws Exception {
        Tokenizer t = SentencePieceTokenizer.fromLlama2cBin(TOK512);
        assertTrue(t.isSpecial(0) && t.isSpecial(1) && t.isSpecial(2));
        assertFalse(t.isSpecial(3) || t.isSpecial(403));
        assertEquals(0, t.tokenBytes(-1, 2).length);
        assertEquals("\n<s>\n", t.piece(1));
    }

    @Test
    void byteFallbackTokensDecodeToTheirByte() throws Exception {
        Tokenizer t = SentencePieceTokenizer.fromLlama2cBin(TOK512);
        assertEquals("<0x0A>", t.piece(13));
        assertArrayEquals(new byte[] {'\n'}, t.tokenBytes(-1, 13));
        int[] ids = t.encode("日", false); // dummy prefix, then three byte tokens
        assertEquals(0xE6 + 3, ids[ids.length - 3]);
        assertEquals("日", t.decode(t.encode("日", true)));
    }

    @Test
    void modelProtoAndLlama2cBinEncodeIdentically() throws Exception {
        SentencePieceTokenizer proto = SentencePieceTokenizer.fromModelProto(LLAMA2.resolve("tokenizer.model"));
        SentencePieceTokenizer bin = SentencePieceTokenizer.fromLlama2cBin(LLAMA2.resolve("tokenizer.bin"));
        assertEquals(32000, proto.vocabSize());
        assertEquals(32000, bin.vocabSize());
        assertEquals(1, proto.bos());
        assertEquals(2, proto.eos());
        assertEquals("▁the", proto.piece(278));
        assertEquals(" the", bin.piece(278));
        for (String text : TEXTS) {
            int[] a = proto.encode(text, true);
            assertArrayEquals(a, bin.encode(text, true), text);
            assertEquals(text, proto.decode(a), text);
            assertEquals(text, bin.decode(a), text);
        }
    }

    @Test
    void llama2EncodesKnownIds() throws Exception {
        // Well-known Llama 2 ids: "Hello world" -> [1, 15043, 3186].
        SentencePieceTokenizer t = SentencePieceTokenizer.fromModelProto(LLAMA2.resolve("tokenizer.model"));
        assertArrayEquals(new int[] {1, 15043, 3186}, t.encode("Hello world", true));
        assertArrayEquals(new int[] {1, 29871, 13}, t.encode("\n", true));
    }

    @Test
    void longTextEncodesQuickly() throws Exception {
        SentencePieceTokenizer t = SentencePieceTokenizer.fromModelProto(LLAMA2.resolve("tokenizer.model"));
        String para = "Once upon a time, in a land far away, there lived a curious fox named Ébène. ";
        String text = para.repeat(200); // ~16k characters, ~4k tokens
        long start = System.nanoTime();
        int[] ids = t.encode(text, true);
        long ms = (System.nanoTime() - start) / 1_000_000;
        assertTrue(ids.length > 2000, "tokens: " + ids.length);
        assertTrue(ms < 2000, "encode took " + ms + " ms");
        assertEquals(text, t.decode(ids));
    }
}
