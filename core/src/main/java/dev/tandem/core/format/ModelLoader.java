package dev.tandem.core.format;

import dev.tandem.core.format.gguf.GgufFile;
import dev.tandem.core.format.gguf.GgufModelReader;
import dev.tandem.core.format.hf.HfConfig;
import dev.tandem.core.format.hf.HfModelFiles;
import dev.tandem.core.format.llama2c.Llama2cCheckpoint;
import dev.tandem.core.format.safetensors.SafetensorsFile;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.ModelWeights;
import dev.tandem.core.tokenizer.ByteLevelBpeTokenizer;
import dev.tandem.core.tokenizer.GptVocabFiles;
import dev.tandem.core.tokenizer.SentencePieceTokenizer;
import dev.tandem.core.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * Opens a model by what its bytes are, not by its name: a folder with config.json (Hugging Face), a GGUF file
 * ("GGUF" magic), a safetensors file (its folder is then the model), or a llama2.c checkpoint (header whose
 * sizes match the file). Weights stay memory-mapped; every problem is a {@link ModelFormatException} naming the file.
 */
public final class ModelLoader {
    private ModelLoader() {}

    /** @param tokenizerFile a tokenizer to use instead of the model's own, or null */
    public static Model load(Path path, Path tokenizerFile) {
        if (!Files.exists(path)) throw new ModelFormatException(path + ": no such file or folder");
        if (Files.isDirectory(path)) return loadHuggingFace(path, tokenizerFile);
        Arena probeArena = Arena.ofConfined();
        MappedFile probe;
        try {
            probe = MappedFile.map(path, probeArena);
            MemorySegment s = probe.segment();
            if (s.byteSize() >= 4 && s.get(ValueLayout.JAVA_INT_UNALIGNED, 0) == 0x46554747) { // "GGUF" little-endian
                probeArena.close();
                return loadGguf(path, tokenizerFile);
            }
            if (SafetensorsFile.looksLike(s)) {
                probeArena.close();
                return loadHuggingFace(path.toAbsolutePath().getParent(), tokenizerFile);
            }
            if (Llama2cCheckpoint.looksLike(probe)) {
                probeArena.close();
                return loadLlama2c(path, tokenizerFile);
            }
        } catch (RuntimeException e) {
            if (probeArena.scope().isAlive()) probeArena.close();
            throw e;
        }
        probeArena.close();
        throw new ModelFormatException(path + ": not a recognised model: expected a GGUF file (magic 'GGUF'), a safetensors file, "
                + "a llama2.c checkpoint (header sizes matching the file size of " + probe.size() + " bytes), or a Hugging Face folder");
    }

    private static Model loadHuggingFace(Path dir, Path tokenizerFile) {
        Path configJson = dir.resolve("config.json");
        if (!Files.exists(configJson)) throw new ModelFormatException(dir + ": no config.json (a Hugging Face model folder needs one)");
        ModelConfig config = HfConfig.read(configJson);
        Arena arena = Arena.ofShared();
        return closingOnFailure(arena::close, () -> {
            HfModelFiles files = HfModelFiles.open(dir, arena);
            WeightBinder binder = new WeightBinder(files.tensors, files.fileOf, "config.json");
            ModelWeights weights = config.isOpt() ? binder.bindOpt(config) : binder.bind(config, WeightBinder.HUGGING_FACE);
            Tokenizer tokenizer = tokenizerFile != null ? tokenizerFromFile(tokenizerFile)
                    : Files.exists(dir.resolve("tokenizer.json")) ? ByteLevelBpeTokenizer.fromHuggingFace(dir)
                    : Files.exists(dir.resolve("tokenizer.model")) ? SentencePieceTokenizer.fromModelProto(dir.resolve("tokenizer.model"))
                    // GPT-2's files, as facebook/opt-* ship them; OPT's tokenizer puts its BOS in front.
                    : GptVocabFiles.present(dir) ? GptVocabFiles.read(dir, config.bos(), config.eos(), config.isOpt())
                    : null;
            if (tokenizer == null) throw new ModelFormatException(dir + ": no tokenizer.json, tokenizer.model or vocab.json + merges.txt (or pass --tokenizer)");
            // Hugging Face pads embedding tables past the tokenizer (e.g. to a multiple of 64); the reverse is an error.
            if (tokenizer.vocabSize() > config.vocabSize()) {
                throw new ModelFormatException(dir + ": the tokenizer has " + tokenizer.vocabSize() + " tokens but config.json's vocab_size is " + config.vocabSize());
            }
            String dtypes = files.tensors.values().stream().map(t -> t.dtype().name()).distinct().sorted().reduce((a, b) -> a + "+" + b).orElse("");
            return new Model(config, weights, tokenizer, "Hugging Face safetensors " + dtypes, arena::close);
        });
    }

    private static Model loadGguf(Path file, Path tokenizerFile) {
        GgufFile g;
        try {
            g = GgufFile.open(file);
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot read: " + e.getMessage(), e);
        }
        return closingOnFailure(g::close, () -> {
            GgufModelReader.Loaded m = GgufModelReader.read(g, file.getFileName().toString());
            Tokenizer tokenizer = m.tokenizer();
            if (tokenizerFile != null) {
                tokenizer = tokenizerFromFile(tokenizerFile);
                checkVocab(tokenizer, m.config(), tokenizerFile);
            }
            return new Model(m.config(), m.weights(), tokenizer, "GGUF v" + g.version(), g);
        });
    }

    private static Model loadLlama2c(Path file, Path tokenizerFile) {
        Arena arena = Arena.ofShared();
        return closingOnFailure(arena::close, () -> {
            MappedFile f = MappedFile.map(file, arena);
            Llama2cCheckpoint.Loaded m = Llama2cCheckpoint.load(f);
            Path tok = tokenizerFile != null ? tokenizerFile : besideLlama2c(file);
            Tokenizer tokenizer = tokenizerFromFile(tok);
            checkVocab(tokenizer, m.config(), tok);
            return new Model(m.config(), m.weights(), tokenizer, "llama2.c checkpoint (f32)", arena::close);
        });
    }

    private interface ModelBuilder { Model build() throws IOException; }

    /** Builds a model whose mappings {@code release} owns; releases them if building fails. */
    private static Model closingOnFailure(Runnable release, ModelBuilder builder) {
        try {
            return builder.build();
        } catch (IOException e) {
            release.run();
            throw new UncheckedIOException(e);
        } catch (RuntimeException e) {
            release.run();
            throw e;
        }
    }

    /** tokenizer.bin beside the checkpoint, else the only tok*.bin there (llama2.c's custom vocabularies). */
    private static Path besideLlama2c(Path file) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        Path standard = dir.resolve("tokenizer.bin");
        if (Files.exists(standard)) return standard;
        try (Stream<Path> s = Files.list(dir)) {
            List<Path> toks = s.filter(p -> p.getFileName().toString().matches("tok.*\\.bin") && !p.equals(file.toAbsolutePath())).toList();
            if (toks.size() == 1) return toks.get(0);
        }
        throw new ModelFormatException(file.getFileName() + ": llama2.c checkpoints need a tokenizer: put tokenizer.bin beside it or pass --tokenizer FILE");
    }

    /** A tokenizer file recognised by content: tokenizer.json, SentencePiece protobuf, or llama2.c tokenizer.bin. */
    static Tokenizer tokenizerFromFile(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new ModelFormatException(file + ": tokenizer file not found");
        byte[] head = new byte[Math.min(16, (int) Files.size(file))];
        try (var in = Files.newInputStream(file)) {
            int n = in.readNBytes(head, 0, head.length);
            String start = new String(head, 0, n, java.nio.charset.StandardCharsets.ISO_8859_1).stripLeading();
            if (start.startsWith("{")) return ByteLevelBpeTokenizer.fromHuggingFace(file.toAbsolutePath().getParent());
            if (n > 0 && head[0] == 0x0a) return SentencePieceTokenizer.fromModelProto(file); // protobuf field 1, length-delimited
        }
        return SentencePieceTokenizer.fromLlama2cBin(file);
    }

    private static void checkVocab(Tokenizer t, ModelConfig c, Path tokenizerFile) {
        if (t.vocabSize() != c.vocabSize()) {
            throw new ModelFormatException(tokenizerFile.getFileName() + ": the tokenizer has " + t.vocabSize()
                    + " tokens but the model's vocabulary has " + c.vocabSize());
        }
    }
}
