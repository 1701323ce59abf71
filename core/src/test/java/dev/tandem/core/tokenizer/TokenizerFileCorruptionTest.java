package dev.tandem.core.tokenizer;

import dev.tandem.core.TestModels;
import dev.tandem.core.format.ModelFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** Truncated or corrupt tokenizer files fail with a ModelFormatException naming the file and the problem. */
class TokenizerFileCorruptionTest {
    private static final Path TOK512 = TestModels.model("stories260K").resolve("tok512.bin");
    private static final Path MODEL = TestModels.model("llama2-tokenizer-32000").resolve("tokenizer.model");

    @TempDir Path dir;

    @Test
    void llama2cTokenLengthPastTheEndIsReported() throws Exception {
        byte[] b = Files.readAllBytes(TOK512);
        int offset = tokenOffset(b, 37);
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(offset + 4, 9999);
        Path f = write("tok512.bin", b);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> SentencePieceTokenizer.fromLlama2cBin(f));
        assertEquals("tok512.bin: token 37 length 9999 runs past the end of the file (6227 bytes)", e.getMessage());
    }

    @Test
    void llama2cNegativeAndOverlongLengthsAreReported() throws Exception {
        byte[] b = Files.readAllBytes(TOK512);
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(tokenOffset(b, 5) + 4, -3);
        Path f = write("neg.bin", b);
        assertMessage(() -> SentencePieceTokenizer.fromLlama2cBin(f), "neg.bin: token 5 has negative length -3");

        byte[] c = Files.readAllBytes(TOK512);
        ByteBuffer.wrap(c).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 2); // max_token_length 2, but pieces are longer
        Path g = write("short.bin", c);
        assertMessage(() -> SentencePieceTokenizer.fromLlama2cBin(g), "short.bin: token", "exceeds max_token_length 2");
    }

    @Test
    void llama2cTruncatedFilesAreReported() throws Exception {
        byte[] b = Files.readAllBytes(TOK512);
        Path empty = write("empty.bin", new byte[0]);
        assertMessage(() -> SentencePieceTokenizer.fromLlama2cBin(empty), "empty.bin: too short");
        Path cut = write("cut.bin", java.util.Arrays.copyOf(b, tokenOffset(b, 100) + 5));
        assertMessage(() -> SentencePieceTokenizer.fromLlama2cBin(cut), "cut.bin: token 100 is cut off");
        Path whole = write("whole.bin", b);
        assertMessage(() -> SentencePieceTokenizer.fromLlama2cBin(whole, 600), "whole.bin: token 512 is cut off",
                "expected 600 tokens");
        assertEquals(512, SentencePieceTokenizer.fromLlama2cBin(whole, 512).vocabSize());
    }

    @Test
    void llama2cRandomDamageNeverEscapesAsAnotherException() throws Exception {
        byte[] original = Files.readAllBytes(TOK512);
        Random r = new Random(1);
        for (int trial = 0; trial < 300; trial++) {
            byte[] b = damage(original, r);
            try {
                Llama2cTokenizerReader.parse("x.bin", b, -1);
            } catch (ModelFormatException e) {
                assertTrue(e.getMessage().startsWith("x.bin: "), e.getMessage());
            }
        }
    }

    @Test
    void modelProtoTruncationIsReported() throws Exception {
        byte[] b = Files.readAllBytes(MODEL);
        Path f = write("tokenizer.model", java.util.Arrays.copyOf(b, 1000));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> SentencePieceTokenizer.fromModelProto(f));
        assertTrue(e.getMessage().startsWith("tokenizer.model: "), e.getMessage());
        assertTrue(e.getMessage().contains("runs past the end"), e.getMessage());
    }

    @Test
    void modelProtoRandomDamageNeverEscapesAsAnotherException() throws Exception {
        byte[] original = Files.readAllBytes(MODEL);
        Random r = new Random(2);
        for (int trial = 0; trial < 200; trial++) {
            byte[] b = damage(original, r);
            try {
                SentencePieceModelReader.parse("m.model", b);
            } catch (ModelFormatException e) {
                assertTrue(e.getMessage().startsWith("m.model: "), e.getMessage());
            }
        }
        for (int trial = 0; trial < 200; trial++) {
            byte[] noise = new byte[r.nextInt(64)];
            r.nextBytes(noise);
            try {
                SentencePieceModelReader.parse("noise.model", noise);
            } catch (ModelFormatException e) {
                assertTrue(e.getMessage().startsWith("noise.model: "), e.getMessage());
            }
        }
    }

    @Test
    void modelProtoOfAUnigramModelIsRefused() throws Exception {
        ByteArrayOutputStream m = new ByteArrayOutputStream();
        for (String p : new String[] {"<unk>", "<s>", "</s>", "▁a"}) {
            ByteArrayOutputStream piece = new ByteArrayOutputStream();
            field(piece, 1, p.getBytes(StandardCharsets.UTF_8));
            field(m, 1, piece.toByteArray());
        }
        ByteArrayOutputStream trainer = new ByteArrayOutputStream();
        trainer.write(3 << 3); // model_type, varint
        trainer.write(1); // UNIGRAM
        field(m, 2, trainer.toByteArray());
        Path f = write("uni.model", m.toByteArray());
        assertMessage(() -> SentencePieceTokenizer.fromModelProto(f), "uni.model: trainer_spec.model_type is UNIGRAM");
    }

    @Test
    void modelProtoWithBadPieceTypeOrIdsIsReported() throws Exception {
        ByteArrayOutputStream m = new ByteArrayOutputStream();
        ByteArrayOutputStream piece = new ByteArrayOutputStream();
        field(piece, 1, "x".getBytes(StandardCharsets.UTF_8));
        piece.write(3 << 3);
        piece.write(9); // no such type
        field(m, 1, piece.toByteArray());
        Path f = write("type.model", m.toByteArray());
        assertMessage(() -> SentencePieceTokenizer.fromModelProto(f), "type.model: piece 0 ('x') has unknown type 9");

        ByteArrayOutputStream n = new ByteArrayOutputStream();
        ByteArrayOutputStream p = new ByteArrayOutputStream();
        field(p, 1, "x".getBytes(StandardCharsets.UTF_8));
        field(n, 1, p.toByteArray()); // one piece; default bos_id 1 is outside it
        Path g = write("ids.model", n.toByteArray());
        assertMessage(() -> SentencePieceTokenizer.fromModelProto(g), "ids.model: trainer_spec.bos_id 1 is outside the 1 pieces");
    }

    private static byte[] damage(byte[] original, Random r) {
        byte[] b = java.util.Arrays.copyOf(original, r.nextBoolean() ? original.length : r.nextInt(original.length));
        int flips = r.nextInt(8);
        for (int i = 0; i < flips && b.length > 0; i++) b[r.nextInt(b.length)] = (byte) r.nextInt(256);
        return b;
    }

    private static int tokenOffset(byte[] b, int token) {
        ByteBuffer in = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        int pos = 4;
        for (int i = 0; i < token; i++) pos += 8 + in.getInt(pos + 4);
        return pos;
    }

    private static void field(ByteArrayOutputStream out, int field, byte[] payload) {
        out.write(field << 3 | 2);
        int len = payload.length;
        while (len >= 0x80) {
            out.write(len & 0x7f | 0x80);
            len >>>= 7;
        }
        out.write(len);
        out.writeBytes(payload);
    }

    private Path write(String name, byte[] b) throws Exception {
        Path f = dir.resolve(name);
        Files.write(f, b);
        return f;
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable call, String... parts) {
        ModelFormatException e = assertThrows(ModelFormatException.class, call);
        assertTrue(e.getMessage().startsWith(parts[0]), e.getMessage());
        for (String p : parts) assertTrue(e.getMessage().contains(p), e.getMessage());
    }
}
