package dev.tandem.core.format;

import dev.tandem.core.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The files a model's tokenizer (and chat template) is read from, as bytes by file name: what a worker sends a
 * router that has no copy of the model. {@code main} is the file the tokenizer is recognised from
 * (tokenizer.json, a SentencePiece tokenizer.model, a llama2.c tokenizer.bin); the others lie beside it.
 */
public record TokenizerFiles(String main, Map<String, byte[]> files) {
    /** Read beside a tokenizer.json: the chat template and special tokens. */
    private static final String[] COMPANIONS = {"tokenizer_config.json", "chat_template.jinja"};

    public TokenizerFiles {
        if (!files.containsKey(main)) throw new IllegalArgumentException("tokenizer files: '" + main + "' is not among " + files.keySet());
        for (String name : files.keySet()) {
            if (name.isEmpty() || name.contains("/") || name.contains("\\") || name.startsWith(".")) {
                throw new IllegalArgumentException("tokenizer files: '" + name + "' is not a plain file name");
            }
        }
    }

    /**
     * The files {@link ModelLoader#load(Path, Path)} reads the tokenizer from for this model and tokenizer option.
     * Hugging Face folders (or a safetensors file in one) and explicit tokenizer files; a GGUF file or a llama2.c
     * checkpoint without {@code tokenizerFile} keeps its tokenizer inside or beside itself in ways not sent.
     */
    public static TokenizerFiles of(Path model, Path tokenizerFile) throws IOException {
        Path main;
        if (tokenizerFile != null) {
            main = tokenizerFile;
        } else {
            Path dir = Files.isDirectory(model) ? model
                    : model.getFileName().toString().endsWith(".safetensors") ? model.toAbsolutePath().getParent() : null;
            if (dir == null) {
                throw new ModelFormatException(model + ": only a Hugging Face model's tokenizer (or one given with --tokenizer) can be sent to "
                        + "a router; start the router with --model instead");
            }
            main = Files.exists(dir.resolve("tokenizer.json")) ? dir.resolve("tokenizer.json") : dir.resolve("tokenizer.model");
        }
        if (!Files.isRegularFile(main)) throw new ModelFormatException(main + ": tokenizer file not found");
        Map<String, byte[]> files = new LinkedHashMap<>();
        String name = main.getFileName().toString();
        boolean json = startsWithBrace(main);
        if (json) name = "tokenizer.json"; // the Hugging Face reader opens it by this name in its folder
        files.put(name, Files.readAllBytes(main));
        if (json) {
            for (String c : COMPANIONS) {
                Path p = main.toAbsolutePath().getParent().resolve(c);
                if (Files.isRegularFile(p)) files.put(c, Files.readAllBytes(p));
            }
        }
        return new TokenizerFiles(name, files);
    }

    private static boolean startsWithBrace(Path file) throws IOException {
        try (var in = Files.newInputStream(file)) {
            byte[] head = in.readNBytes(16);
            return new String(head, java.nio.charset.StandardCharsets.ISO_8859_1).stripLeading().startsWith("{");
        }
    }

    /** Writes the files to a fresh folder and reads the tokenizer from them, exactly as the model's loader does. */
    public Tokenizer load() throws IOException {
        Path dir = Files.createTempDirectory("tandem-tokenizer");
        try {
            for (var e : files.entrySet()) Files.write(dir.resolve(e.getKey()), e.getValue());
            return ModelLoader.tokenizerFromFile(dir.resolve(main));
        } finally {
            try (Stream<Path> s = Files.walk(dir)) {
                for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
            }
        }
    }
}
