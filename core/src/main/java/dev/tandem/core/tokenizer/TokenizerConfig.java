package dev.tandem.core.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.core.format.ModelFormatException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * What a Hugging Face tokenizer_config.json says beyond tokenizer.json: the BOS / EOS token strings and the
 * chat template (a Jinja string the server renders). Newer exports keep the template in chat_template.jinja.
 */
public record TokenizerConfig(Optional<String> chatTemplate, Optional<String> bosToken, Optional<String> eosToken) {
    public static final TokenizerConfig NONE = new TokenizerConfig(Optional.empty(), Optional.empty(), Optional.empty());

    /** Reads tokenizer_config.json (and chat_template.jinja) in {@code dir}; NONE when neither exists. */
    public static TokenizerConfig read(Path dir) throws IOException {
        Path file = dir.resolve("tokenizer_config.json");
        Path jinja = dir.resolve("chat_template.jinja");
        Optional<String> template = Files.isRegularFile(jinja) ? Optional.of(Files.readString(jinja)) : Optional.empty();
        if (!Files.isRegularFile(file)) return new TokenizerConfig(template, Optional.empty(), Optional.empty());
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(file.toFile());
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new ModelFormatException("tokenizer_config.json: not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) throw new ModelFormatException("tokenizer_config.json: not a JSON object");
        if (template.isEmpty()) template = chatTemplate(root.get("chat_template"));
        return new TokenizerConfig(template, tokenString(root, "bos_token"), tokenString(root, "eos_token"));
    }

    /** A string, or a list of named templates of which we take "default" (else the first). */
    private static Optional<String> chatTemplate(JsonNode node) {
        if (node == null || node.isNull()) return Optional.empty();
        if (node.isTextual()) return Optional.of(node.asText());
        if (node.isArray()) {
            JsonNode first = null;
            for (JsonNode t : node) {
                if (first == null) first = t;
                if ("default".equals(t.path("name").asText())) return Optional.of(t.path("template").asText());
            }
            if (first != null && first.path("template").isTextual()) return Optional.of(first.path("template").asText());
            return Optional.empty();
        }
        throw new ModelFormatException("tokenizer_config.json: chat_template is neither a string nor a list");
    }

    /** Either "<s>" or an AddedToken object {"content": "<s>", ...}. */
    private static Optional<String> tokenString(JsonNode root, String field) {
        JsonNode n = root.get(field);
        if (n == null || n.isNull()) return Optional.empty();
        if (n.isTextual()) return Optional.of(n.asText());
        if (n.isObject() && n.path("content").isTextual()) return Optional.of(n.get("content").asText());
        throw new ModelFormatException("tokenizer_config.json: " + field + " is neither a string nor {\"content\": ...}");
    }
}
