package dev.tandem.core.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tandem.core.TestModels;
import dev.tandem.core.format.ModelFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.*;

class HuggingFaceTokenizerReaderTest {
    private static final Path MODEL = TestModels.model("gutenberg-stories-llama-25m");
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir Path dir;

    /** A small byte-level BPE: merges as pairs, a template with BOS and EOS, a non-special added token. */
    private static final String SMALL = """
            {"added_tokens": [
               {"id": 0, "content": "<s>", "special": true},
               {"id": 1, "content": "</s>", "special": true},
               {"id": 9, "content": "<tool>", "special": false, "lstrip": true, "rstrip": true}],
             "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}]},
             "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
             "post_processor": {"type": "TemplateProcessing",
               "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "</s>"}}],
               "special_tokens": {"<s>": {"ids": [0]}, "</s>": {"ids": [1]}}},
             "decoder": {"type": "ByteLevel"},
             "model": {"type": "BPE", "vocab": {"<s>": 0, "</s>": 1, "a": 2, "b": 3, "Ġ": 4, "ab": 5, "Ġab": 6,
                                                "Ã": 7, "©": 8},
                       "merges": [["a", "b"], ["Ġ", "ab"]]}}
            """;

    @Test
    void mergesAsPairsTemplateSuffixAndAddedTokens() throws Exception {
        Files.writeString(dir.resolve("tokenizer.json"), SMALL);
        Files.writeString(dir.resolve("tokenizer_config.json"), """
                {"bos_token": {"content": "<s>"}, "eos_token": "</s>",
                 "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "{{ x }}"}]}
                """);
        ByteLevelBpeTokenizer t = ByteLevelBpeTokenizer.fromHuggingFace(dir);
        assertEquals(10, t.vocabSize());
        assertArrayEquals(new int[] {0, 5, 6, 1}, t.encode("ab ab", true));
        assertArrayEquals(new int[] {5, 9, 2}, t.encode("ab  <tool>  a", false)); // lstrip / rstrip eat the spaces
        assertEquals("ab<tool>a", t.decode(new int[] {5, 9, 2}));
        assertFalse(t.isSpecial(9));
        assertArrayEquals(new int[] {7, 8}, t.encode("e\u0301", false)); // NFC makes it é = C3 A9
        assertEquals(0, t.bos());
        assertEquals(1, t.eos());
        assertEquals("{{ x }}", t.chatTemplate().orElseThrow());
        assertEquals("</s>", t.eosToken().orElseThrow());
    }

    @Test
    void chatTemplateJinjaFileIsUsed() throws Exception {
        Files.writeString(dir.resolve("tokenizer.json"), SMALL);
        Files.writeString(dir.resolve("chat_template.jinja"), "{% for m in messages %}{{ m.content }}{% endfor %}");
        ByteLevelBpeTokenizer t = ByteLevelBpeTokenizer.fromHuggingFace(dir);
        assertTrue(t.chatTemplate().orElseThrow().startsWith("{% for m"));
        assertEquals(0, t.bos()); // no config: the one token the template adds first
        assertEquals(-1, t.eos());
    }

    @Test
    void unsupportedFeaturesNameTheField() throws Exception {
        refused(r -> ((ObjectNode) r.get("model")).put("type", "WordPiece"), "tokenizer.json: model.type \"WordPiece\"");
        refused(r -> ((ObjectNode) r.get("model")).put("type", "Unigram"), "tokenizer.json: model.type \"Unigram\"");
        refused(r -> ((ObjectNode) r.get("model")).put("continuing_subword_prefix", "##"),
                "tokenizer.json: model.continuing_subword_prefix");
        refused(r -> r.set("normalizer", obj("{\"type\": \"Lowercase\"}")), "tokenizer.json: normalizer.type \"Lowercase\"");
        refused(r -> r.set("pre_tokenizer", obj("{\"type\": \"Metaspace\"}")),
                "tokenizer.json: pre_tokenizer.type \"Metaspace\"");
        refused(r -> ((ObjectNode) r.at("/pre_tokenizer/pretokenizers/0")).put("behavior", "Removed"),
                "tokenizer.json: pre_tokenizer.pretokenizers[0].behavior \"Removed\"");
        refused(r -> r.set("pre_tokenizer", r.at("/pre_tokenizer/pretokenizers/0")),
                "tokenizer.json: pre_tokenizer has no ByteLevel step");
        refused(r -> r.set("post_processor", obj("{\"type\": \"BertProcessing\"}")),
                "tokenizer.json: post_processor.type \"BertProcessing\"");
        refused(r -> r.set("decoder", obj("{\"type\": \"WordPiece\"}")), "tokenizer.json: decoder.type \"WordPiece\"");
        refused(r -> ((com.fasterxml.jackson.databind.node.ArrayNode) r.at("/model/merges")).insert(0, "Ġ zzz"),
                "tokenizer.json: merges[0] \"Ġ zzz\": 'zzz' is not in the vocabulary");
        refused(r -> ((com.fasterxml.jackson.databind.node.ArrayNode) r.at("/model/merges")).insert(3, "abc"),
                "tokenizer.json: merges[3] \"abc\" is not two pieces");
    }

    @Test
    void invalidJsonIsReported() throws Exception {
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {\"vocab\": ");
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ByteLevelBpeTokenizer.fromHuggingFace(dir));
        assertTrue(e.getMessage().startsWith("tokenizer.json: not valid JSON"), e.getMessage());
    }

    private void refused(Consumer<ObjectNode> edit, String message) throws Exception {
        ObjectNode root = (ObjectNode) JSON.readTree(MODEL.resolve("tokenizer.json").toFile());
        edit.accept(root);
        Files.writeString(dir.resolve("tokenizer.json"), JSON.writeValueAsString(root));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ByteLevelBpeTokenizer.fromHuggingFace(dir));
        assertTrue(e.getMessage().startsWith(message), e.getMessage());
    }

    private static JsonNode obj(String json) {
        try {
            return JSON.readTree(json);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}
