package dev.tandem.core.format.gguf;

import dev.tandem.core.format.ModelFormatException;
import dev.tandem.core.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static dev.tandem.core.format.gguf.GgufRoundTripTest.assertMessage;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Damaged and hostile files: each must fail with a ModelFormatException that says where and what. */
class GgufMalformedFileTest {
    private static final int F32 = 0, Q8_0 = 8;
    private static final long HUGE = 1L << 62;

    @TempDir Path dir;

    /** One F32 tensor 'blk.0.w' with ne = [4, 2] and one metadata key, in the layout the tests below damage. */
    private static Bytes valid(int version) {
        return new Bytes().header(version, 1, 1).kvString("general.architecture", "llama")
                .tensor("blk.0.w", F32, 0, 4, 2).pad().zeros(32);
    }

    @Test
    void craftedFileOfVersion3Or2Opens() throws IOException {
        for (int version : new int[] {3, 2}) {
            try (GgufFile g = GgufFile.open(valid(version).write(dir, "v" + version + ".gguf"))) {
                assertEquals(version, g.version());
                assertEquals("llama", g.getString("general.architecture"));
                assertArrayEquals(new long[] {2, 4}, g.tensor("blk.0.w").shape());
            }
        }
    }

    @Test
    void badMagicOrTooShort() throws IOException {
        byte[] b = valid(3).toArray();
        b[3] = 'L';
        Path file = write("magic.gguf", b);
        assertMessage(() -> open(file), file, "not a GGUF file", "47 47 55 4c", "expected the magic 'GGUF'");
        Path empty = write("empty.gguf", new byte[0]);
        assertMessage(() -> open(empty), empty, "file is 0 bytes, too short for a GGUF header");
    }

    @Test
    void unsupportedVersions() throws IOException {
        Path v1 = valid(1).write(dir, "v1.gguf");
        assertMessage(() -> open(v1), v1, "unsupported GGUF version 1, expected 2 or 3", "re-convert");
        Path v4 = valid(4).write(dir, "v4.gguf");
        assertMessage(() -> open(v4), v4, "unsupported GGUF version 4, expected 2 or 3");
        Path big = valid(0x0300_0000).write(dir, "be.gguf");
        assertMessage(() -> open(big), big, "looks big-endian");
    }

    @Test
    void fileTruncatedAtAnyByteFailsAndSaysWhere() throws IOException {
        Path whole = dir.resolve("whole.gguf");
        new GgufWriter().putString("general.name", "Tiny model").putStringArray("tokenizer.ggml.tokens", List.of("<s>", "a", "b"))
                .putFloat32Array("tokenizer.ggml.scores", new float[] {0, -1, -2}).putUInt32("llama.block_count", 1)
                .addTensor("blk.0.attn_q.weight", DType.Q8_0, new long[] {2, 32}, new float[64])
                .addTensor("output_norm.weight", DType.F32, new long[] {8}, new float[8]) // 32 bytes: no padding at the end
                .write(whole);
        byte[] b = Files.readAllBytes(whole);
        for (int size = 0; size < b.length; size++) {
            Path cut = write("cut.gguf", Arrays.copyOf(b, size));
            try {
                open(cut);
                fail("a file cut to " + size + " of " + b.length + " bytes opened");
            } catch (ModelFormatException e) {
                assertTrue(e.getMessage().startsWith(cut + ": "), e.getMessage());
            }
        }
        Path inString = write("in-string.gguf", Arrays.copyOf(b, indexOf(b, "Tiny model") + 4));
        assertMessage(() -> open(inString), inString, "metadata key 'general.name' has length 10, past the end of the file (4 bytes left)");
        Path inArray = write("in-array.gguf", Arrays.copyOf(b, indexOf(b, "<s>") + 5));
        assertMessage(() -> open(inArray), inArray, "metadata key 'tokenizer.ggml.tokens' array length is 3, but only 13 bytes are left");
        Path inInfo = write("in-info.gguf", Arrays.copyOf(b, indexOf(b, "blk.0.attn_q.weight") + 25));
        assertMessage(() -> open(inInfo), inInfo, "file ends inside tensor 'blk.0.attn_q.weight' ne[0]");
        Path inData = write("in-data.gguf", Arrays.copyOf(b, b.length - 1));
        assertMessage(() -> open(inData), inData, "tensor 'output_norm.weight' data [offset ", ", 32 bytes] runs past the end of the file ("
                + (b.length - 1) + " bytes)");
    }

    @Test
    void absurdLengthsAndCountsFailWithoutAllocating() throws IOException {
        Bytes keyLength = new Bytes().header(3, 0, 1).u64(HUGE).zeros(16);
        assertFails(keyLength, "metadata key #0 of 1 has length 4611686018427387904, past the end of the file");
        Bytes keyLengthUnsigned = new Bytes().header(3, 0, 1).u64(-1L).zeros(16);
        assertFails(keyLengthUnsigned, "metadata key #0 of 1 has length 18446744073709551615");
        Bytes valueLength = new Bytes().header(3, 0, 1).str("general.name").u32(8).u64(HUGE).zeros(8);
        assertFails(valueLength, "metadata key 'general.name' has length 4611686018427387904, past the end of the file (8 bytes left)");
        Bytes arrayCount = new Bytes().header(3, 0, 1).str("tokenizer.ggml.token_type").u32(9).u32(0).u64(1L << 40).zeros(64);
        assertFails(arrayCount, "metadata key 'tokenizer.ggml.token_type' array length is 1099511627776, but only 64 bytes are left");
        Bytes stringArrayCount = new Bytes().header(3, 0, 1).str("tokenizer.ggml.tokens").u32(9).u32(8).u64(100).zeros(64);
        assertFails(stringArrayCount, "'tokenizer.ggml.tokens' array length is 100, but only 64 bytes are left in the file (at least 8 per item)");
        Bytes stringInArray = new Bytes().header(3, 0, 1).str("tokenizer.ggml.tokens").u32(9).u32(8).u64(2)
                .str("a").u64(HUGE);
        assertFails(stringInArray, "metadata key 'tokenizer.ggml.tokens' has length 4611686018427387904, past the end");
        assertFails(new Bytes().header(3, HUGE, 0), "file ends inside tensor info #0 of 4611686018427387904 name length");
        assertFails(new Bytes().header(3, 0, -1L), "file ends inside metadata key #0 of 18446744073709551615 length");
        Bytes tensorName = new Bytes().header(3, 1, 0).u64(HUGE).zeros(40);
        assertFails(tensorName, "tensor info #0 of 1 name has length 4611686018427387904");
    }

    @Test
    void tensorDataOutsideTheFile() throws IOException {
        Bytes farOffset = new Bytes().header(3, 1, 0).tensor("blk.3.attn_q.weight", F32, 1024, 4, 2).pad().zeros(32);
        assertFails(farOffset, "tensor 'blk.3.attn_q.weight' data [offset 1120, 32 bytes] runs past the end of the file (128 bytes)");
        Bytes hugeOffset = new Bytes().header(3, 1, 0).tensor("w", F32, -32L, 4, 2).pad().zeros(32);
        assertFails(hugeOffset, "tensor 'w' data [offset", "runs past the end of the file (128 bytes)");
        Bytes bigTensor = new Bytes().header(3, 1, 0).tensor("w", F32, 0, 4096, 4096).pad().zeros(32);
        assertFails(bigTensor, "tensor 'w' data [offset 96, 67108864 bytes] runs past the end of the file (128 bytes)");
        Bytes overflow = new Bytes().header(3, 1, 0).tensor("w", F32, 0, 1L << 40, 1L << 40).pad();
        assertFails(overflow, "tensor 'w' is too large");
    }

    @Test
    void misalignedTensorOffset() throws IOException {
        Bytes b = new Bytes().header(3, 1, 0).tensor("w", F32, 4, 4, 2).pad().zeros(64);
        assertFails(b, "tensor 'w' data offset 4 is not a multiple of the alignment 32");
        Bytes custom = new Bytes().header(3, 1, 1).kvU32("general.alignment", 64).tensor("w", F32, 32, 4, 2).pad().zeros(128);
        assertFails(custom, "tensor 'w' data offset 32 is not a multiple of the alignment 64");
        assertFails(new Bytes().header(3, 0, 1).kvU32("general.alignment", 48), "'general.alignment' is 48, expected a power of two");
        assertFails(new Bytes().header(3, 0, 1).kvU32("general.alignment", 0), "'general.alignment' is 0, expected a power of two");
        assertFails(new Bytes().header(3, 0, 1).kvString("general.alignment", "32"), "'general.alignment' is a string, expected a uint32");
    }

    @Test
    void unsupportedOrUnknownGgmlType() throws IOException {
        assertFails(new Bytes().header(3, 1, 0).tensor("blk.0.ffn_down.weight", 12, 0, 256, 2).pad(),
                "tensor 'blk.0.ffn_down.weight' has ggml type 12 (Q4_K), which Tandem does not read; supported: F32, F16, BF16, Q8_0, Q4_0");
        assertFails(new Bytes().header(3, 1, 0).tensor("w", 1000, 0, 4).pad(), "tensor 'w' has ggml type 1000 (unknown)");
        assertFails(new Bytes().header(3, 1, 0).tensor("q", Q8_0, 0, 48, 2).pad().zeros(128),
                "tensor 'q' has rows of ne[0] = 48 values, expected a multiple of Q8_0's block of 32");
    }

    @Test
    void unknownMetadataValueTypes() throws IOException {
        assertFails(new Bytes().header(3, 0, 1).str("general.architecture").u32(13).zeros(8),
                "metadata key 'general.architecture' has unknown value type 13, expected 0 to 12");
        assertFails(new Bytes().header(3, 0, 1).str("general.tags").u32(9).u32(99).u64(0),
                "metadata key 'general.tags' is an array of unknown value type 99");
        assertFails(new Bytes().header(3, 0, 1).str("general.flag").u32(7).u8(2), "metadata key 'general.flag' is a bool stored as 2, expected 0 or 1");
    }

    @Test
    void duplicateNames() throws IOException {
        assertFails(new Bytes().header(3, 2, 0).tensor("blk.0.w", F32, 0, 8).tensor("blk.0.w", F32, 32, 8).pad().zeros(64),
                "duplicate tensor name 'blk.0.w'");
        assertFails(new Bytes().header(3, 0, 2).kvString("general.name", "a").kvString("general.name", "b"),
                "duplicate metadata key 'general.name'");
    }

    @Test
    void badDimensions() throws IOException {
        assertFails(new Bytes().header(3, 1, 0).str("w").u32(5).u64(1).u64(1).u64(1).u64(1).u64(1).u32(F32).u64(0).pad().zeros(32),
                "tensor 'w' has 5 dimensions, expected 1 to 4");
        assertFails(new Bytes().header(3, 1, 0).str("w").u32(0).u32(F32).u64(0).pad().zeros(32),
                "tensor 'w' has 0 dimensions, expected 1 to 4");
        assertFails(new Bytes().header(3, 1, 0).tensor("w", F32, 0, 4, 0).pad().zeros(32), "tensor 'w' has ne[1] = 0, expected at least 1");
        assertFails(new Bytes().header(3, 1, 0).tensor("w", F32, 0, -1L).pad().zeros(32),
                "tensor 'w' has ne[0] = 18446744073709551615, expected at least 1");
    }

    @Test
    void arraysOfArraysAreReadButNotNestedWithoutLimit() throws IOException {
        Bytes nested = new Bytes().header(3, 0, 1).str("x.pairs").u32(9).u32(9).u64(2)
                .u32(5).u64(2).u32(1).u32(2)
                .u32(5).u64(1).u32(3);
        try (GgufFile g = GgufFile.open(nested.write(dir, "nested.gguf"))) {
            List<?> pairs = (List<?>) g.metadata().get("x.pairs");
            assertEquals(2, pairs.size());
            assertArrayEquals(new int[] {1, 2}, (int[]) pairs.get(0));
            assertArrayEquals(new int[] {3}, (int[]) pairs.get(1));
        }
        Bytes deep = new Bytes().header(3, 0, 1).str("x.deep").u32(9);
        for (int i = 0; i < 20; i++) deep.u32(9).u64(1);
        assertFails(deep.u32(5).u64(0), "metadata key 'x.deep' nests arrays deeper than 8");
    }

    @Test
    void randomlyCorruptedFilesFailOnlyWithModelFormatException() throws IOException {
        Path whole = dir.resolve("fuzz-source.gguf");
        new GgufWriter().putString("general.architecture", "llama").putStringArray("tokenizer.ggml.tokens", List.of("a", "bb", "ccc"))
                .putArray("x.u64", GgufValueType.UINT64, new long[] {1, 2}).putBool("x.b", true)
                .addTensor("a", DType.Q4_0, new long[] {2, 32}, new float[64])
                .addTensor("b", DType.BF16, new long[] {3, 5}, new float[15]).write(whole);
        byte[] original = Files.readAllBytes(whole);
        Random rnd = new Random(1);
        int opened = 0;
        for (int trial = 0; trial < 2000; trial++) {
            byte[] b = original.clone();
            for (int k = 1 + rnd.nextInt(3); k > 0; k--) {
                int at = rnd.nextInt(Math.min(b.length, 260)); // the header, where damage changes the parse
                b[at] = rnd.nextInt(4) == 0 ? (byte) 0xff : (byte) rnd.nextInt(256);
            }
            Path file = write("fuzz.gguf", b);
            try (GgufFile g = GgufFile.open(file)) {
                g.tensors();
                opened++;
            } catch (ModelFormatException e) {
                assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
            }
        }
        assertTrue(opened < 2000, "some corruptions must be detected");
    }

    // ---- helpers ---------------------------------------------------------------------------------------------

    private static void open(Path file) {
        try (GgufFile g = GgufFile.open(file)) {
            g.version();
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    private void assertFails(Bytes b, String... parts) throws IOException {
        Path file = b.write(dir, "crafted.gguf");
        assertMessage(() -> open(file), file, parts);
    }

    private Path write(String name, byte[] b) throws IOException {
        Path file = dir.resolve(name);
        Files.write(file, b);
        return file;
    }

    private static int indexOf(byte[] haystack, String needle) {
        byte[] n = needle.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i + n.length <= haystack.length; i++) {
            if (Arrays.equals(haystack, i, i + n.length, n, 0, n.length)) return i;
        }
        throw new AssertionError(needle + " not in file");
    }

    /** Little-endian bytes of a hand-made GGUF file. */
    static final class Bytes {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Bytes u8(int v) {
            out.write(v);
            return this;
        }

        Bytes u32(int v) {
            out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array());
            return this;
        }

        Bytes u64(long v) {
            out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
            return this;
        }

        Bytes str(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            out.writeBytes(b);
            return this;
        }

        Bytes zeros(int n) {
            out.writeBytes(new byte[n]);
            return this;
        }

        Bytes pad() { return zeros((32 - out.size() % 32) % 32); }

        Bytes header(int version, long tensors, long kvs) { return u32(GgufFile.MAGIC).u32(version).u64(tensors).u64(kvs); }

        Bytes kvString(String key, String value) { return str(key).u32(GgufValueType.STRING.id()).str(value); }

        Bytes kvU32(String key, int value) { return str(key).u32(GgufValueType.UINT32.id()).u32(value); }

        Bytes tensor(String name, int ggmlType, long offset, long... ne) {
            str(name).u32(ne.length);
            for (long d : ne) u64(d);
            return u32(ggmlType).u64(offset);
        }

        byte[] toArray() { return out.toByteArray(); }

        Path write(Path dir, String name) throws IOException {
            Path file = dir.resolve(name);
            Files.write(file, toArray());
            return file;
        }
    }
}
