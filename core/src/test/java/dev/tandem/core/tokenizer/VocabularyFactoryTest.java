package dev.tandem.core.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.core.TestModels;
import dev.tandem.core.format.ModelFormatException;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The factories the GGUF loader uses give the same tokenizer as the files they are converted from. */
class VocabularyFactoryTest {
    private static final List<String> TEXTS = List.of("Once upon a time", "héllo wörld 日本 🙂",
            "don't I'LL 12345\r\n\n  \t x", "Hello<|end_of_text|>World");

    @Test
    void gpt2VocabularyMatchesTokenizerJson() throws Exception {
        var dir = TestModels.model("gutenberg-stories-llama-25m");
        ByteLevelBpeTokenizer hf = ByteLevelBpeTokenizer.fromHuggingFace(dir);
        JsonNode merges = new ObjectMapper().readTree(dir.resolve("tokenizer.json").toFile()).at("/model/merges");
        String[] m = new String[merges.size()];
        for (int i = 0; i < m.length; i++) m[i] = merges.get(i).asText();
        String[] tokens = new String[hf.vocabSize()];
        int[] types = new int[tokens.length];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = hf.piece(i);
            types[i] = hf.isSpecial(i) ? TokenType.CONTROL.code : TokenType.NORMAL.code;
        }
        ByteLevelBpeTokenizer gguf = ByteLevelBpeTokenizer.fromVocabulary(tokens, types, m, 0, 1, true,
                ByteLevelBpeTokenizer.LLAMA3_REGEX);
        String val = Files.readString(TestModels.model("gutenberg-stories").resolve("val.txt"));
        for (String text : concat(TEXTS, val.substring(0, 4000))) {
            assertArrayEquals(hf.encode(text, true), gguf.encode(text, true), text);
            int[] ids = gguf.encode(text, false);
            assertEquals(text.replace("<|end_of_text|>", ""), gguf.decode(ids));
        }
        assertTrue(gguf.isSpecial(1));
    }

    @Test
    void llamaVocabularyMatchesModelProto() throws Exception {
        SentencePieceTokenizer proto = SentencePieceTokenizer.fromModelProto(
                TestModels.model("llama2-tokenizer-32000").resolve("tokenizer.model"));
        int n = proto.vocabSize();
        String[] pieces = new String[n];
        float[] scores = new float[n];
        int[] types = new int[n];
        for (int i = 0; i < n; i++) {
            pieces[i] = proto.piece(i);
            scores[i] = proto.score(i);
            types[i] = proto.type(i).code;
        }
        SentencePieceTokenizer gguf = SentencePieceTokenizer.fromVocabulary(pieces, scores, types, 1, 2, true);
        SentencePieceTokenizer untyped = SentencePieceTokenizer.fromVocabulary(pieces, scores, null, 1, 2, false);
        for (String text : TEXTS) {
            int[] ids = proto.encode(text, true);
            assertArrayEquals(ids, gguf.encode(text, true), text);
            assertArrayEquals(java.util.Arrays.copyOfRange(ids, 1, ids.length), untyped.encode(text, true), text);
        }
        assertEquals(0, gguf.unk());
    }

    @Test
    void badVocabulariesAreRefused() {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> SentencePieceTokenizer.fromVocabulary(
                new String[] {"<unk>", "x"}, new float[] {0, 0}, new int[] {2, 6}, -1, -1, false));
        assertEquals("tokenizer vocabulary: token 1 has type BYTE but its piece 'x' is not of the form <0xXX>",
                e.getMessage());
        e = assertThrows(ModelFormatException.class, () -> SentencePieceTokenizer.fromVocabulary(
                new String[] {"a"}, new float[] {0}, new int[] {1}, 3, -1, true));
        assertEquals("tokenizer vocabulary: bos id 3 outside the vocabulary (size 1)", e.getMessage());
        e = assertThrows(ModelFormatException.class, () -> ByteLevelBpeTokenizer.fromVocabulary(
                new String[] {"a", "b"}, null, new String[] {"a b"}, -1, -1, false, null));
        assertEquals("tokenizer vocabulary: merges[0] \"a b\": 'ab' is not in the vocabulary", e.getMessage());
    }

    private static List<String> concat(List<String> a, String b) {
        var l = new java.util.ArrayList<>(a);
        l.add(b);
        return l;
    }
}
