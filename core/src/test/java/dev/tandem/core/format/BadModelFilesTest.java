package dev.tandem.core.format;

import dev.tandem.core.TestModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Broken model folders and files, crafted from the real test models: each gives one ModelFormatException
 * whose message names the file, the field or tensor, and what was expected.
 */
class BadModelFilesTest {
    @TempDir
    Path tmp;

    private static final Path HF_DRAFT = TestModels.model("gutenberg-stories-llama-3m");
    private static final Path STORIES = TestModels.model("stories260K");

    /** A copy of the 3m draft folder, to be broken. */
    private Path hfCopy() throws IOException {
        Path dir = tmp.resolve("hf");
        Files.createDirectories(dir);
        for (String f : new String[] {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
            Files.copy(HF_DRAFT.resolve(f), dir.resolve(f), StandardCopyOption.REPLACE_EXISTING);
        }
        return dir;
    }

    private static String fails(Path model) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelLoader.load(model, null).close());
        return e.getMessage();
    }

    private static void contains(String message, String... parts) {
        for (String p : parts) assertTrue(message.contains(p), "message '" + message + "' should mention '" + p + "'");
    }

    @Test
    void missingModelIsNamed() {
        contains(fails(tmp.resolve("nothing-here")), "nothing-here", "no such file");
    }

    @Test
    void folderWithoutConfigJson() throws IOException {
        Path dir = hfCopy();
        Files.delete(dir.resolve("config.json"));
        contains(fails(dir), "config.json");
    }

    @Test
    void unsupportedArchitecture() throws IOException {
        Path dir = hfCopy();
        replaceInFile(dir.resolve("config.json"), "LlamaForCausalLM", "GPT2LMHeadModel");
        contains(fails(dir), "config.json", "GPT2LMHeadModel", "LlamaForCausalLM");
    }

    @Test
    void shapeThatDisagreesWithConfig() throws IOException {
        Path dir = hfCopy();
        replaceInFile(dir.resolve("config.json"), "\"intermediate_size\": 512", "\"intermediate_size\": 640");
        contains(fails(dir), "model.safetensors", "model.layers.0.mlp.gate_proj.weight", "config.json implies [640, 192]");
    }

    @Test
    void truncatedSafetensors() throws IOException {
        Path dir = hfCopy();
        truncate(dir.resolve("model.safetensors"), 100_000);
        contains(fails(dir), "model.safetensors", "data_offsets", "outside the data section");
    }

    @Test
    void safetensorsHeaderLengthPastTheEnd() throws IOException {
        Path dir = hfCopy();
        patch(dir.resolve("model.safetensors"), 0, longLe(1L << 24));
        contains(fails(dir), "model.safetensors", "JSON header", "runs past the end of the file");
    }

    @Test
    void unknownSafetensorsDtype() throws IOException {
        Path dir = hfCopy();
        Path st = dir.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(st);
        String header = new String(all, 8, (int) ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong(), StandardCharsets.UTF_8);
        int at = header.indexOf("\"BF16\"");
        System.arraycopy("\"I8\"  ".getBytes(StandardCharsets.UTF_8), 0, all, 8 + at, 6);
        Files.write(st, all);
        contains(fails(dir), "model.safetensors", "dtype 'I8'", "F32, F16, BF16");
    }

    @Test
    void corruptJsonHeader() throws IOException {
        Path dir = hfCopy();
        patch(dir.resolve("model.safetensors"), 8, "{{{{".getBytes(StandardCharsets.US_ASCII));
        contains(fails(dir), "model.safetensors", "JSON header");
    }

    @Test
    void tokenizerLargerThanModelVocabulary() throws IOException {
        Path dir = hfCopy();
        replaceInFile(dir.resolve("config.json"), "\"vocab_size\": 8192", "\"vocab_size\": 4096");
        // The embedding check fires first: the tensor no longer matches config.json.
        contains(fails(dir), "model.embed_tokens.weight", "config.json implies [4096, 192]");
    }

    @Test
    void llama2cTruncated() throws IOException {
        Path f = tmp.resolve("stories260K.bin");
        Files.copy(STORIES.resolve("stories260K.bin"), f);
        Files.copy(STORIES.resolve("tok512.bin"), tmp.resolve("tok512.bin"));
        truncate(f, 500_000);
        contains(fails(f), "stories260K.bin", "not a recognised model");
    }

    @Test
    void llama2cVersion2IsRefusedByName() {
        contains(fails(TestModels.model("stories260K-q8").resolve("stories260K-q8.bin")), "stories260K-q8.bin", "version 2");
    }

    @Test
    void llama2cWithTokenizerOfAnotherVocabulary() throws IOException {
        Path f = tmp.resolve("stories260K.bin");
        Files.copy(STORIES.resolve("stories260K.bin"), f);
        Path tok = TestModels.model("llama2-tokenizer-32000").resolve("tokenizer.bin");
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelLoader.load(f, tok).close());
        contains(e.getMessage(), "tokenizer.bin", "32000", "512");
    }

    @Test
    void llama2cWithoutTokenizer() throws IOException {
        Path f = tmp.resolve("stories260K.bin");
        Files.copy(STORIES.resolve("stories260K.bin"), f);
        contains(fails(f), "stories260K.bin", "tokenizer");
    }

    @Test
    void randomBytesAreNotAModel() throws IOException {
        Path f = tmp.resolve("noise.bin");
        byte[] b = new byte[4096];
        new java.util.Random(1).nextBytes(b);
        Files.write(f, b);
        contains(fails(f), "noise.bin", "not a recognised model");
    }

    @Test
    void ggufTensorOffsetOutsideTheFile() throws IOException {
        Path f = tmp.resolve("m.gguf");
        dev.tandem.core.format.gguf.GgufWriter w = new dev.tandem.core.format.gguf.GgufWriter();
        w.putString("general.architecture", "llama");
        w.addTensor("token_embd.weight", dev.tandem.core.tensor.DType.F32, new long[] {4, 32}, new float[128]);
        w.write(f);
        truncate(f, Files.size(f) - 100);
        contains(fails(f), "m.gguf", "token_embd.weight", "runs past the end of the file");
    }

    @Test
    void ggufUnsupportedArchitecture() throws IOException {
        Path f = tmp.resolve("m.gguf");
        dev.tandem.core.format.gguf.GgufWriter w = new dev.tandem.core.format.gguf.GgufWriter();
        w.putString("general.architecture", "falcon");
        w.write(f);
        contains(fails(f), "m.gguf", "general.architecture 'falcon'");
    }

    private static void replaceInFile(Path p, String from, String to) throws IOException {
        String s = Files.readString(p);
        assertTrue(s.contains(from), p + " should contain " + from);
        Files.writeString(p, s.replace(from, to));
    }

    private static void truncate(Path p, long size) throws IOException {
        try (var ch = java.nio.channels.FileChannel.open(p, java.nio.file.StandardOpenOption.WRITE)) {
            ch.truncate(size);
        }
    }

    private static void patch(Path p, int offset, byte[] bytes) throws IOException {
        byte[] all = Files.readAllBytes(p);
        System.arraycopy(bytes, 0, all, offset, bytes.length);
        Files.write(p, all);
    }

    private static byte[] longLe(long v) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array();
    }
}
