package dev.tandem.core.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.core.TestModels;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class ByteLevelBpeTokenizerTest {
    private static final Path MODEL = TestModels.model("gutenberg-stories-llama-25m");
    private static final Path DATA = TestModels.model("gutenberg-stories");
    private static ByteLevelBpeTokenizer tok;

    @BeforeAll
    static void load() throws Exception {
        tok = ByteLevelBpeTokenizer.fromHuggingFace(MODEL);
    }

    @Test
    void encodesOnceUponATimeWithBos() {
        assertEquals(8192, tok.vocabSize());
        assertEquals(0, tok.bos());
        assertEquals(1, tok.eos());
        assertArrayEquals(new int[] {0, 6583, 606, 260, 579}, tok.encode("Once upon a time", true));
        assertArrayEquals(new int[] {6583, 606, 260, 579}, tok.encode("Once upon a time", false));
    }

    @Test
    void goldenPromptsEncodeAndGeneratedIdsDecodeAsTransformersDid() throws Exception {
        JsonNode golden = new ObjectMapper().readTree(DATA.resolve("golden.json").toFile());
        JsonNode prompts = golden.get("prompts");
        assertTrue(prompts.size() >= 3);
        for (JsonNode p : prompts) {
            String prompt = p.get("prompt").asText();
            assertArrayEquals(ints(p.get("prompt_ids")), tok.encode(prompt, true), prompt);
            assertEquals(prompt, tok.decode(ints(p.get("prompt_ids"))));
            JsonNode target = p.get("target");
            assertEquals(target.get("generated_text").asText(), tok.decode(ints(target.get("generated_ids"))), prompt);
        }
    }

    @Test
    void validationTextRoundTrips() throws Exception {
        String val = Files.readString(DATA.resolve("val.txt"));
        String paragraph = val.substring(0, Math.min(val.length(), 6000));
        int[] ids = tok.encode(paragraph, true);
        assertEquals(0, ids[0]);
        assertTrue(ids.length < paragraph.length() / 2, "suspiciously many tokens: " + ids.length);
        assertEquals(paragraph, tok.decode(ids));
    }

    @Test
    void trickyStringsRoundTrip() {
        for (String s : List.of("don't I'LL we'Re", "12345 1234567", "héllo wörld 日本 🙂", "\r\n\n  \t x",
                "   ", "a\u00a0b\u3000c", "tabs\t\tand\n\n\nnewlines  ", "")) {
            assertEquals(s, tok.decode(tok.encode(s, true)), s);
        }
    }

    @Test
    void llama3SplitRulesApply() {
        // Contractions are their own words, case-insensitively, and digits go in groups of at most three.
        assertEquals(List.of("don", "'t", " I", "'LL", " ", "123", "456", "7"), split("don't I'LL 1234567"));
        assertEquals(List.of("Hello", ",", " world", "!\n\n", "  ", " x"), split("Hello, world!\n\n   x"));
        // \s is Unicode whitespace, as in Oniguruma: U+3000 is a space, not punctuation.
        assertEquals(List.of("x", "\u3000", "\u3000y"), split("x\u3000\u3000y"));
        List<String> digits = pieces(tok.encode("1234567", false));
        assertEquals("1234567", String.join("", digits));
        assertTrue(digits.stream().allMatch(d -> d.length() <= 3), digits.toString());
    }

    private static List<String> split(String text) {
        List<String> out = new java.util.ArrayList<>();
        PreTokenizer.isolate(ByteLevelBpeTokenizer.LLAMA3_REGEX).split(text, out);
        return out;
    }

    @Test
    void specialTokensInTextAreMatchedLiterallyAndDecodeToNothing() {
        int[] ids = tok.encode("Hello<|end_of_text|>World", false);
        assertTrue(contains(ids, 1), java.util.Arrays.toString(ids));
        assertTrue(tok.isSpecial(0) && tok.isSpecial(1));
        assertFalse(tok.isSpecial(6583));
        assertEquals("HelloWorld", tok.decode(ids));
        assertEquals(0, tok.tokenBytes(-1, 1).length);
    }

    @Test
    void configGivesBosAndEosStrings() {
        assertEquals("<|begin_of_text|>", tok.bosToken().orElseThrow());
        assertEquals("<|end_of_text|>", tok.eosToken().orElseThrow());
        assertTrue(tok.chatTemplate().isEmpty()); // this base model has none
        assertEquals(1, tok.tokenId("<|end_of_text|>"));
        assertEquals("Ġt", tok.piece(tok.tokenId("Ġt")));
    }

    @Test
    void repeatedEncodingIsStable() {
        String s = "the the the cat sat on the mat; the end.";
        assertArrayEquals(tok.encode(s, true), tok.encode(s, true));
    }

    private List<String> pieces(int[] ids) {
        return java.util.Arrays.stream(ids).mapToObj(id -> new String(tok.tokenBytes(-1, id),
                java.nio.charset.StandardCharsets.UTF_8)).toList();
    }

    private static boolean contains(int[] a, int v) {
        for (int x : a) if (x == v) return true;
        return false;
    }

    static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }
}
