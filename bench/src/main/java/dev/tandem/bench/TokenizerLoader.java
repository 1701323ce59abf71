package dev.tandem.bench;

import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.tokenizer.ByteLevelBpeTokenizer;
import dev.tandem.core.tokenizer.SentencePieceTokenizer;
import dev.tandem.core.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The tokenizer that sizes the prompts. A folder or file holding only a tokenizer (tokenizer.json,
 * tokenizer.model, llama2.c tokenizer.bin / tok*.bin) is read directly, so benchmarking a large remote model needs no local copy of its weights;
 * anything else (a GGUF file, a model folder) goes through {@link ModelLoader}.
 */
public final class TokenizerLoader {
    private TokenizerLoader() {}

    public static Tokenizer load(Path path) {
        if (!Files.exists(path)) throw new BenchException(path + ": tokenizer path not found (give a model folder, tokenizer.json, tokenizer.model or GGUF file)");
        try {
            if (Files.isDirectory(path)) {
                if (Files.exists(path.resolve("tokenizer.json"))) return ByteLevelBpeTokenizer.fromHuggingFace(path);
                if (Files.exists(path.resolve("tokenizer.model"))) return SentencePieceTokenizer.fromModelProto(path.resolve("tokenizer.model"));
                if (Files.exists(path.resolve("tokenizer.bin"))) return SentencePieceTokenizer.fromLlama2cBin(path.resolve("tokenizer.bin"));
            } else {
                String name = path.getFileName().toString();
                if (name.endsWith(".json")) return ByteLevelBpeTokenizer.fromHuggingFace(path.toAbsolutePath().getParent());
                if (name.endsWith(".model")) return SentencePieceTokenizer.fromModelProto(path);
                if (name.matches("tok.*\\.bin")) return SentencePieceTokenizer.fromLlama2cBin(path); // llama2.c tokenizer
            }
            // Tokenizers live on the heap, so the weights' mappings can be released at once.
            try (Model model = ModelLoader.load(path, null)) {
                return model.tokenizer();
            }
        } catch (IOException e) {
            throw new BenchException(path + ": cannot read tokenizer: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            if (e instanceof BenchException) throw e;
            throw new BenchException(path + ": cannot load tokenizer: " + e.getMessage(), e);
        }
    }
}
