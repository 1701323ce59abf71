package dev.tandem.core.tokenizer;

import dev.tandem.core.format.ModelFormatException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads llama2.c's tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length and the
 * piece's bytes, all little-endian. The file does not store the vocabulary size (the checkpoint does), so
 * without one it reads to the end. Ids follow llama2.c: 0 unk, 1 BOS, 2 EOS.
 */
final class Llama2cTokenizerReader {
    private static final int UNK = 0, BOS = 1, EOS = 2;

    private Llama2cTokenizerReader() {}

    static SentencePieceTokenizer read(Path file, int vocabSize) throws IOException {
        return parse(file.getFileName().toString(), Files.readAllBytes(file), vocabSize);
    }

    static SentencePieceTokenizer parse(String name, byte[] data, int vocabSize) {
        ByteBuffer in = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        int size = data.length;
        if (size < 4) throw bad(name, "too short for the max_token_length header (" + size + " bytes)");
        int maxLength = in.getInt();
        if (maxLength <= 0) throw bad(name, "max_token_length " + maxLength + " is not positive");
        List<String> pieces = new ArrayList<>();
        List<Float> scores = new ArrayList<>();
        while (vocabSize < 0 ? in.hasRemaining() : pieces.size() < vocabSize) {
            int i = pieces.size();
            if (in.remaining() < 8) {
                throw bad(name, "token " + i + " is cut off at byte " + in.position() + ": its score and length need 8"
                        + " bytes, the file has " + size + (vocabSize >= 0 ? " (expected " + vocabSize + " tokens)" : ""));
            }
            float score = in.getFloat();
            int length = in.getInt();
            if (length < 0) throw bad(name, "token " + i + " has negative length " + length);
            if (length > in.remaining()) {
                throw bad(name, "token " + i + " length " + length + " runs past the end of the file (" + size + " bytes)");
            }
            if (length > maxLength) {
                throw bad(name, "token " + i + " length " + length + " exceeds max_token_length " + maxLength);
            }
            byte[] b = new byte[length];
            in.get(b);
            pieces.add(new String(b, StandardCharsets.UTF_8));
            scores.add(score);
        }
        int n = pieces.size();
        if (n <= EOS) throw bad(name, "has " + n + " tokens; llama2.c needs at least unk, BOS and EOS");
        float[] s = new float[n];
        TokenType[] types = new TokenType[n];
        for (int i = 0; i < n; i++) {
            s[i] = scores.get(i);
            types[i] = i == UNK ? TokenType.UNKNOWN : i == BOS || i == EOS ? TokenType.CONTROL
                    : SentencePieceTokenizer.byteValue(pieces.get(i)) >= 0 ? TokenType.BYTE : TokenType.NORMAL;
        }
        return new SentencePieceTokenizer(name, pieces.toArray(String[]::new), s, types, UNK, BOS, EOS, true, true);
    }

    private static ModelFormatException bad(String name, String what) {
        return new ModelFormatException(name + ": " + what);
    }
}
