package dev.tandem.core.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A byte-level BPE tokenizer.json of any vocabulary size, for random-weight models: BOS and EOS at the ids the
 * model's config names, the 256 byte-level symbols at the next free ids, then pieces " t&lt;id&gt;" up to the size.
 * There are no merges, so text encodes byte by byte, and every id decodes to something printable. Both Tandem's
 * reader and Hugging Face's tokenizers library take it (the special tokens are also in model.vocab, so that
 * tokenizers keeps their ids instead of appending them after the vocabulary).
 */
public final class SyntheticTokenizer {
    public static final String BOS = "<|begin_of_text|>", EOS = "<|end_of_text|>";

    private SyntheticTokenizer() {}

    /** The smallest vocabulary: 256 bytes, BOS and EOS. */
    public static final int MIN_VOCAB = 258;

    /** Writes tokenizer.json and tokenizer_config.json into dir. */
    public static void write(Path dir, int vocabSize, int bos, int eos, int maxLength) throws IOException {
        if (vocabSize < MIN_VOCAB) throw new IllegalArgumentException("a byte-level vocabulary needs at least " + MIN_VOCAB + " tokens, got " + vocabSize);
        if (bos < 0 || bos >= vocabSize || eos < 0 || eos >= vocabSize || bos == eos) {
            throw new IllegalArgumentException("BOS " + bos + " and EOS " + eos + " must be distinct ids below " + vocabSize);
        }
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (int id : new int[] {Math.min(bos, eos), Math.max(bos, eos)}) {
            added.addObject().put("id", id).put("content", id == bos ? BOS : EOS).put("single_word", false)
                    .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", true);
        }
        root.putNull("normalizer");
        root.putObject("pre_tokenizer").put("type", "ByteLevel").put("add_prefix_space", false)
                .put("trim_offsets", true).put("use_regex", true);
        ObjectNode post = root.putObject("post_processor");
        post.put("type", "TemplateProcessing");
        ArrayNode single = post.putArray("single");
        special(single, BOS, 0);
        sequence(single, "A", 0);
        ArrayNode pair = post.putArray("pair");
        special(pair, BOS, 0);
        sequence(pair, "A", 0);
        special(pair, BOS, 1);
        sequence(pair, "B", 1);
        ObjectNode bosEntry = post.putObject("special_tokens").putObject(BOS);
        bosEntry.put("id", BOS);
        bosEntry.putArray("ids").add(bos);
        bosEntry.putArray("tokens").add(BOS);
        root.putObject("decoder").put("type", "ByteLevel").put("add_prefix_space", true)
                .put("trim_offsets", true).put("use_regex", true);
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.put("ignore_merges", false);
        ObjectNode vocab = model.putObject("vocab");
        int nextByte = 0;
        for (int id = 0; id < vocabSize; id++) {
            String piece = id == bos ? BOS : id == eos ? EOS
                    : nextByte < 256 ? String.valueOf(ByteLevel.charOf(nextByte++))
                    : ByteLevel.charOf(' ') + "t" + id;
            vocab.put(piece, id);
        }
        model.putArray("merges");
        Files.writeString(dir.resolve("tokenizer.json"), json.writeValueAsString(root));

        ObjectNode config = json.createObjectNode();
        config.put("tokenizer_class", "PreTrainedTokenizerFast");
        config.put("bos_token", BOS);
        config.put("eos_token", EOS);
        config.put("model_max_length", maxLength);
        config.put("clean_up_tokenization_spaces", false);
        Files.writeString(dir.resolve("tokenizer_config.json"), config.toPrettyString());
    }

    private static void special(ArrayNode list, String id, int typeId) {
        list.addObject().putObject("SpecialToken").put("id", id).put("type_id", typeId);
    }

    private static void sequence(ArrayNode list, String id, int typeId) {
        list.addObject().putObject("Sequence").put("id", id).put("type_id", typeId);
    }
}
