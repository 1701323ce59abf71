package dev.tandem.core.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.core.format.ModelFormatException;

import java.io.IOException;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Reads a Hugging Face tokenizer.json with a byte-level BPE model. Only what byte-level BPE models use is
 * supported; any other model, normalizer, pre-tokenizer, post-processor or decoder fails with a
 * {@link ModelFormatException} naming the field, rather than silently tokenizing differently.
 */
final class HuggingFaceTokenizerReader {
    private static final String FILE = "tokenizer.json";

    private HuggingFaceTokenizerReader() {}

    static ByteLevelBpeTokenizer read(Path dir) throws IOException {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(dir.resolve(FILE).toFile());
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new ModelFormatException(FILE + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) throw bad("not a JSON object");
        return parse(root, TokenizerConfig.read(dir));
    }

    static ByteLevelBpeTokenizer parse(JsonNode root, TokenizerConfig config) {
        JsonNode model = root.path("model");
        if (!model.isObject()) throw bad("model is missing");
        String type = model.path("type").asText(model.has("merges") ? "BPE" : "");
        if (!type.equals("BPE")) throw bad("model.type " + quote(type) + " is not supported (only BPE)");
        for (String f : new String[] {"continuing_subword_prefix", "end_of_word_suffix"}) {
            if (!model.path(f).isNull() && !model.path(f).isMissingNode() && !model.path(f).asText().isEmpty()) {
                throw bad("model." + f + " is not supported");
            }
        }
        Map<String, Integer> vocab = vocab(model.path("vocab"));
        List<String[]> merges = merges(model.path("merges"));
        int unk = -1;
        if (model.path("unk_token").isTextual()) {
            Integer u = vocab.get(model.get("unk_token").asText());
            if (u == null) throw bad("model.unk_token " + quote(model.get("unk_token").asText()) + " is not in the vocabulary");
            unk = u;
        }
        List<AddedTokens.Token> added = addedTokens(root.path("added_tokens"));
        Map<String, Integer> ids = new HashMap<>(vocab);
        for (AddedTokens.Token t : added) ids.put(t.content(), t.id());

        PreTokenizer pre = preTokenizer(root.path("pre_tokenizer"));
        int[][] template = template(root.path("post_processor"), "post_processor", ids);
        checkDecoder(root.path("decoder"), "decoder");
        int bos = config.bosToken().map(s -> ids.getOrDefault(s, -1))
                .orElse(template[0].length == 1 ? template[0][0] : -1); // no config: the one token "single" adds
        int eos = config.eosToken().map(s -> ids.getOrDefault(s, -1)).orElse(-1);
        return new ByteLevelBpeTokenizer(vocab, new BpeMerges(FILE, vocab, merges),
                model.path("ignore_merges").asBoolean(false), unk, normalizer(root.path("normalizer"), "normalizer"),
                pre, added, template[0], template[1], bos, eos, config);
    }

    private static Map<String, Integer> vocab(JsonNode node) {
        if (!node.isObject()) throw bad("model.vocab is not an object");
        Map<String, Integer> vocab = new HashMap<>();
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            if (!e.getValue().canConvertToInt() || e.getValue().asInt() < 0) {
                throw bad("model.vocab[" + quote(e.getKey()) + "] is not a non-negative id");
            }
            vocab.put(e.getKey(), e.getValue().asInt());
        }
        return vocab;
    }

    /** Merges as "a b" strings (older files) or as ["a", "b"] pairs (newer ones). */
    private static List<String[]> merges(JsonNode node) {
        if (node.isMissingNode() || node.isNull()) return List.of();
        if (!node.isArray()) throw bad("model.merges is not an array");
        List<String[]> out = new ArrayList<>(node.size());
        for (int i = 0; i < node.size(); i++) {
            JsonNode m = node.get(i);
            if (m.isTextual()) out.add(BpeMerges.parse(FILE, i, m.asText()));
            else if (m.isArray() && m.size() == 2 && m.get(0).isTextual() && m.get(1).isTextual()) {
                out.add(new String[] {m.get(0).asText(), m.get(1).asText()});
            } else throw bad("model.merges[" + i + "] is neither \"a b\" nor [\"a\", \"b\"]");
        }
        return out;
    }

    private static List<AddedTokens.Token> addedTokens(JsonNode node) {
        List<AddedTokens.Token> out = new ArrayList<>();
        if (node.isMissingNode() || node.isNull()) return out;
        if (!node.isArray()) throw bad("added_tokens is not an array");
        for (int i = 0; i < node.size(); i++) {
            JsonNode t = node.get(i);
            if (!t.path("id").canConvertToInt() || t.path("id").asInt() < 0 || !t.path("content").isTextual()) {
                throw bad("added_tokens[" + i + "] lacks a non-negative id or a content string");
            }
            out.add(new AddedTokens.Token(t.get("content").asText(), t.get("id").asInt(),
                    t.path("special").asBoolean(false), t.path("lstrip").asBoolean(false),
                    t.path("rstrip").asBoolean(false), t.path("single_word").asBoolean(false)));
        }
        return out;
    }

    private static UnaryOperator<String> normalizer(JsonNode node, String field) {
        if (node.isMissingNode() || node.isNull()) return UnaryOperator.identity();
        String type = node.path("type").asText();
        switch (type) {
            case "NFC": return s -> Normalizer.normalize(s, Normalizer.Form.NFC);
            case "Sequence": {
                List<UnaryOperator<String>> steps = new ArrayList<>();
                JsonNode list = node.path("normalizers");
                for (int i = 0; i < list.size(); i++) steps.add(normalizer(list.get(i), field + ".normalizers[" + i + "]"));
                return s -> {
                    for (UnaryOperator<String> n : steps) s = n.apply(s);
                    return s;
                };
            }
            default: throw bad(field + ".type " + quote(type) + " is not supported (only NFC and Sequence)");
        }
    }

    private static PreTokenizer preTokenizer(JsonNode node) {
        List<PreTokenizer> steps = new ArrayList<>();
        boolean[] byteLevel = {false};
        collectPreTokenizers(node, "pre_tokenizer", steps, byteLevel);
        if (!byteLevel[0]) throw bad("pre_tokenizer has no ByteLevel step; only byte-level BPE is supported");
        return PreTokenizer.sequence(steps);
    }

    private static void collectPreTokenizers(JsonNode node, String field, List<PreTokenizer> steps, boolean[] byteLevel) {
        if (node.isMissingNode() || node.isNull()) return;
        String type = node.path("type").asText();
        switch (type) {
            case "Sequence" -> {
                JsonNode list = node.path("pretokenizers");
                for (int i = 0; i < list.size(); i++) {
                    collectPreTokenizers(list.get(i), field + ".pretokenizers[" + i + "]", steps, byteLevel);
                }
            }
            case "Split" -> {
                String behavior = node.path("behavior").asText();
                if (!behavior.equals("Isolated")) {
                    throw bad(field + ".behavior " + quote(behavior) + " is not supported (only Isolated)");
                }
                if (node.path("invert").asBoolean(false)) throw bad(field + ".invert true is not supported");
                if (byteLevel[0]) throw bad(field + ": a Split after ByteLevel is not supported");
                JsonNode pattern = node.path("pattern");
                String regex;
                if (pattern.path("Regex").isTextual()) regex = pattern.get("Regex").asText();
                else if (pattern.path("String").isTextual()) regex = Pattern.quote(pattern.get("String").asText());
                else throw bad(field + ".pattern is neither {\"Regex\": ...} nor {\"String\": ...}");
                try {
                    steps.add(PreTokenizer.isolate(regex));
                } catch (PatternSyntaxException e) {
                    throw bad(field + ".pattern does not compile in Java: " + e.getDescription());
                }
            }
            case "ByteLevel" -> {
                if (byteLevel[0]) throw bad(field + ": a second ByteLevel step is not supported");
                byteLevel[0] = true;
                // tokenizers' defaults: add_prefix_space true, use_regex true.
                steps.add(PreTokenizer.byteLevel(node.path("add_prefix_space").asBoolean(true),
                        node.path("use_regex").asBoolean(true)));
            }
            default -> throw bad(field + ".type " + quote(type) + " is not supported (only Sequence, Split, ByteLevel)");
        }
    }

    /** The ids the "single" template puts before and after the sequence: {prefix, suffix}. */
    private static int[][] template(JsonNode node, String field, Map<String, Integer> ids) {
        int[][] none = {new int[0], new int[0]};
        if (node.isMissingNode() || node.isNull()) return none;
        String type = node.path("type").asText();
        switch (type) {
            case "ByteLevel": return none; // only adjusts offsets
            case "Sequence": {
                int[][] result = none;
                JsonNode list = node.path("processors");
                for (int i = 0; i < list.size(); i++) {
                    int[][] t = template(list.get(i), field + ".processors[" + i + "]", ids);
                    if (t[0].length + t[1].length > 0) {
                        if (result[0].length + result[1].length > 0) throw bad(field + ": two templates");
                        result = t;
                    }
                }
                return result;
            }
            case "TemplateProcessing": return templateProcessing(node, field);
            default: throw bad(field + ".type " + quote(type)
                    + " is not supported (only TemplateProcessing, ByteLevel, Sequence)");
        }
    }

    private static int[][] templateProcessing(JsonNode node, String field) {
        JsonNode single = node.path("single");
        if (!single.isArray()) throw bad(field + ".single is not an array");
        IntList before = new IntList(2), after = new IntList(2);
        boolean seenSequence = false;
        for (int i = 0; i < single.size(); i++) {
            JsonNode item = single.get(i);
            if (item.has("Sequence")) {
                if (seenSequence) throw bad(field + ".single has the sequence twice");
                seenSequence = true;
            } else if (item.has("SpecialToken")) {
                String name = item.get("SpecialToken").path("id").asText();
                JsonNode special = node.path("special_tokens").path(name).path("ids");
                if (!special.isArray()) throw bad(field + ".special_tokens has no ids for " + quote(name));
                for (JsonNode id : special) (seenSequence ? after : before).add(id.asInt());
            } else {
                throw bad(field + ".single[" + i + "] is neither Sequence nor SpecialToken");
            }
        }
        if (!seenSequence) throw bad(field + ".single does not contain the sequence");
        return new int[][] {before.toArray(), after.toArray()};
    }

    /** We always decode byte-level, so only decoders that do just that are accepted. */
    private static void checkDecoder(JsonNode node, String field) {
        if (node.isMissingNode() || node.isNull()) return;
        String type = node.path("type").asText();
        if (type.equals("ByteLevel")) return;
        if (type.equals("Sequence")) {
            JsonNode list = node.path("decoders");
            for (int i = 0; i < list.size(); i++) checkDecoder(list.get(i), field + ".decoders[" + i + "]");
            return;
        }
        throw bad(field + ".type " + quote(type) + " is not supported (only ByteLevel)");
    }

    private static String quote(String s) { return "\"" + s + "\""; }

    private static ModelFormatException bad(String what) { return new ModelFormatException(FILE + ": " + what); }
}
