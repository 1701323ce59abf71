package dev.tandem.core.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.core.format.ModelFormatException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * GPT-2's tokenizer files, vocab.json (piece to id) and merges.txt (ranked pairs after a "#version" line), as the
 * facebook/opt-* checkpoints ship them without a tokenizer.json: read into the same {@link ByteLevelBpeTokenizer}.
 * The special tokens (&lt;s&gt;, &lt;pad&gt;, &lt;/s&gt;, &lt;unk&gt;, &lt;|endoftext|&gt;, and BOS / EOS) are matched
 * literally in text; BOS is put in front when tokenizer_config.json says add_bos_token (OPT's tokenizer does).
 */
public final class GptVocabFiles {
    private GptVocabFiles() {}

    private static final Set<String> SPECIAL = Set.of("<s>", "<pad>", "</s>", "<unk>", "<|endoftext|>");

    public static boolean present(Path dir) {
        return Files.isRegularFile(dir.resolve("vocab.json")) && Files.isRegularFile(dir.resolve("merges.txt"));
    }

    /** @param addBosDefault whether BOS is prepended when tokenizer_config.json does not say */
    public static ByteLevelBpeTokenizer read(Path dir, int bos, int eos, boolean addBosDefault) throws IOException {
        Path vocabFile = dir.resolve("vocab.json");
        JsonNode vocab = new ObjectMapper().readTree(Files.readString(vocabFile));
        if (vocab == null || !vocab.isObject()) throw new ModelFormatException(vocabFile + ": not a JSON object of piece to id");
        String[] tokens = new String[vocab.size()];
        for (Iterator<Map.Entry<String, JsonNode>> it = vocab.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            int id = e.getValue().asInt(-1);
            if (!e.getValue().canConvertToInt() || id < 0 || id >= tokens.length || tokens[id] != null) {
                throw new ModelFormatException(vocabFile + ": piece \"" + e.getKey() + "\" has id " + e.getValue()
                        + "; ids must be 0.." + (tokens.length - 1) + ", each once");
            }
            tokens[id] = e.getKey();
        }
        int[] types = new int[tokens.length];
        for (int i = 0; i < tokens.length; i++) {
            types[i] = (SPECIAL.contains(tokens[i]) || i == bos || i == eos ? TokenType.CONTROL : TokenType.NORMAL).code;
        }
        List<String> merges = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve("merges.txt"))) {
            if (!line.isEmpty() && !line.startsWith("#version")) merges.add(line);
        }
        boolean addBos = addBosDefault;
        Path config = dir.resolve("tokenizer_config.json");
        if (Files.isRegularFile(config)) addBos = new ObjectMapper().readTree(Files.readString(config)).path("add_bos_token").asBoolean(addBosDefault);
        return ByteLevelBpeTokenizer.fromVocabulary(tokens, types, merges.toArray(String[]::new), bos, eos, addBos, null);
    }
}
