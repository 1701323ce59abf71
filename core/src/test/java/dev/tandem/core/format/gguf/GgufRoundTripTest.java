package dev.tandem.core.format.gguf;

import dev.tandem.core.format.ModelFormatException;
import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Halfs;
import dev.tandem.core.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GgufRoundTripTest {
    @TempDir Path dir;

    @Test
    void metadataOfEveryTypeReadsBackExactlyWithItsType() throws IOException {
        Map<String, Object> expected = new LinkedHashMap<>();
        Map<String, GgufValueType> types = new LinkedHashMap<>();
        GgufWriter w = new GgufWriter();
        w.putUInt8("t.u8", 255).putInt8("t.i8", -128).putUInt16("t.u16", 65535).putInt16("t.i16", -32768)
                .putUInt32("t.u32", 4294967295L).putInt32("t.i32", Integer.MIN_VALUE)
                .putFloat32("t.f32", -1.5e-7f).putBool("t.true", true).putBool("t.false", false)
                .putString("t.str", "h\u00e9llo \u2581w\u00f6rld \ud83d\ude42").putString("t.empty", "")
                .putUInt64("t.u64", -1L).putInt64("t.i64", Long.MIN_VALUE).putFloat64("t.f64", Math.PI);
        expected.putAll(Map.of("t.u8", 255, "t.i8", -128, "t.u16", 65535, "t.i16", -32768, "t.u32", 4294967295L,
                "t.i32", Integer.MIN_VALUE, "t.f32", -1.5e-7f, "t.true", true, "t.false", false));
        expected.putAll(Map.of("t.str", "h\u00e9llo \u2581w\u00f6rld \ud83d\ude42", "t.empty", "", "t.u64", -1L,
                "t.i64", Long.MIN_VALUE, "t.f64", Math.PI));
        types.putAll(Map.of("t.u8", GgufValueType.UINT8, "t.i8", GgufValueType.INT8, "t.u16", GgufValueType.UINT16,
                "t.i16", GgufValueType.INT16, "t.u32", GgufValueType.UINT32, "t.i32", GgufValueType.INT32,
                "t.f32", GgufValueType.FLOAT32, "t.true", GgufValueType.BOOL, "t.false", GgufValueType.BOOL));
        types.putAll(Map.of("t.str", GgufValueType.STRING, "t.empty", GgufValueType.STRING,
                "t.u64", GgufValueType.UINT64, "t.i64", GgufValueType.INT64, "t.f64", GgufValueType.FLOAT64));

        Map<String, Object[]> arrays = new LinkedHashMap<>(); // key -> {element type, values}
        arrays.put("a.u8", new Object[] {GgufValueType.UINT8, new int[] {0, 7, 255}});
        arrays.put("a.i8", new Object[] {GgufValueType.INT8, new int[] {-128, 0, 127}});
        arrays.put("a.u16", new Object[] {GgufValueType.UINT16, new int[] {0, 65535}});
        arrays.put("a.i16", new Object[] {GgufValueType.INT16, new int[] {-32768, 32767}});
        arrays.put("a.u32", new Object[] {GgufValueType.UINT32, new long[] {0, 4294967295L}});
        arrays.put("a.i32", new Object[] {GgufValueType.INT32, new int[] {Integer.MIN_VALUE, -1, Integer.MAX_VALUE}});
        arrays.put("a.f32", new Object[] {GgufValueType.FLOAT32, new float[] {1.5f, -0f, Float.MAX_VALUE, Float.MIN_VALUE}});
        arrays.put("a.bool", new Object[] {GgufValueType.BOOL, new boolean[] {true, false, true}});
        arrays.put("a.str", new Object[] {GgufValueType.STRING, List.of("a", "", "\u00fc\ud83d\ude42", "<0x0A>")});
        arrays.put("a.u64", new Object[] {GgufValueType.UINT64, new long[] {-1L, 0, 42}});
        arrays.put("a.i64", new Object[] {GgufValueType.INT64, new long[] {Long.MIN_VALUE, Long.MAX_VALUE}});
        arrays.put("a.f64", new Object[] {GgufValueType.FLOAT64, new double[] {Math.E, -0.0, Double.MIN_VALUE}});
        arrays.put("a.empty", new Object[] {GgufValueType.INT32, new int[0]});
        for (var e : arrays.entrySet()) {
            w.putArray(e.getKey(), (GgufValueType) e.getValue()[0], e.getValue()[1]);
            expected.put(e.getKey(), e.getValue()[1]);
            types.put(e.getKey(), GgufValueType.ARRAY);
        }
        Path file = dir.resolve("meta.gguf");
        w.write(file);

        try (GgufFile g = GgufFile.open(file)) {
            assertEquals(3, g.version());
            assertEquals(expected.size() + 1, g.metadata().size(), "user keys plus general.alignment");
            for (var e : expected.entrySet()) {
                Object actual = g.metadata().get(e.getKey());
                assertTrue(Objects.deepEquals(e.getValue(), actual), e.getKey() + ": " + actual);
                assertEquals(types.get(e.getKey()), g.type(e.getKey()), e.getKey());
            }
            for (var e : arrays.entrySet()) assertEquals(e.getValue()[0], g.elementType(e.getKey()), e.getKey());
            assertEquals(32L, g.metadata().get("general.alignment"));
            assertEquals(GgufValueType.UINT32, g.type("general.alignment"));
            assertTrue(g.tensors().isEmpty());
        }
    }

    @Test
    void typedGettersConvertIntegersThatFitAndNameKeyAndTypeOtherwise() throws IOException {
        Path file = dir.resolve("getters.gguf");
        new GgufWriter().putUInt8("u8", 200).putInt16("i16", -3).putUInt32("u32.small", 7).putUInt32("u32.big", 4294967295L)
                .putUInt64("u64.small", 9).putUInt64("u64.huge", -1L).putInt64("i64", -5).putFloat32("f32", 0.25f)
                .putFloat64("f64", 0.5).putString("s", "llama").putBool("b", true)
                .putStringArray("tokens", List.of("<s>", "</s>")).putFloat32Array("scores", new float[] {0f, -1f})
                .putInt32Array("types", new int[] {1, 3}).putArray("u8s", GgufValueType.UINT8, new int[] {1, 255})
                .putArray("u64s", GgufValueType.UINT64, new long[] {3, -1L})
                .write(file);
        try (GgufFile g = GgufFile.open(file)) {
            assertEquals(200, g.getInt("u8"));
            assertEquals(-3, g.getInt("i16"));
            assertEquals(7, g.getInt("u32.small"));
            assertEquals(9, g.getInt("u64.small"));
            assertEquals(-5, g.getInt("i64"));
            assertEquals(4294967295L, g.getLong("u32.big"));
            assertEquals(0.25f, g.getFloat("f32"));
            assertEquals(0.5f, g.getFloat("f64"));
            assertEquals("llama", g.getString("s"));
            assertTrue(g.getBoolean("b"));
            assertEquals(List.of("<s>", "</s>"), g.getStringArray("tokens"));
            assertArrayEquals(new float[] {0f, -1f}, g.getFloatArray("scores"));
            assertArrayEquals(new int[] {1, 3}, g.getIntArray("types"));
            assertArrayEquals(new int[] {1, 255}, g.getIntArray("u8s"));
            assertEquals(42, g.getInt("absent", 42));
            assertEquals("x", g.getString("absent", "x"));
            assertEquals(1e4f, g.getFloat("absent", 1e4f));
            assertFalse(g.getBoolean("absent", false));
            assertEquals(7, g.getInt("u32.small", 42), "a default is used only when the key is absent");

            assertMessage(() -> g.getInt("u32.big"), file, "'u32.big'", "4294967295", "does not fit in an int");
            assertMessage(() -> g.getLong("u64.huge"), file, "'u64.huge'", "18446744073709551615", "does not fit in a long");
            assertMessage(() -> g.getString("u8"), file, "'u8' is a uint8, expected a string");
            assertMessage(() -> g.getInt("s"), file, "'s' is a string, expected an integer");
            assertMessage(() -> g.getInt("s", 1), file, "'s' is a string, expected an integer");
            assertMessage(() -> g.getFloat("i16"), file, "'i16' is an int16, expected a float");
            assertMessage(() -> g.getStringArray("scores"), file, "'scores' is an array of float32, expected an array of string");
            assertMessage(() -> g.getIntArray("u64s"), file, "'u64s' element 1 = 18446744073709551615 does not fit in an int");
            assertMessage(() -> g.getString("general.architecture"), file, "'general.architecture' is missing (expected a string)");
            assertMessage(() -> g.tensor("output.weight"), file, "tensor 'output.weight' is missing");
        }
    }

    private record Case(String name, DType type, long[] shape, String source) {}

    @Test
    void tensorsOfEveryTypeAndShapeReadBackAsZeroCopyAlignedSlices() throws IOException {
        List<Case> cases = List.of(
                new Case("f32.matrix", DType.F32, new long[] {3, 5}, "floats"),
                new Case("f32.4d", DType.F32, new long[] {2, 1, 3, 2}, "rows"),
                new Case("f32.scalar", DType.F32, new long[] {1}, "encoded"),
                new Case("f16.3d", DType.F16, new long[] {2, 3, 4}, "floats"),
                new Case("f16.encoded", DType.F16, new long[] {3, 3}, "encoded"),
                new Case("bf16.vector", DType.BF16, new long[] {7}, "rows"),
                new Case("bf16.matrix", DType.BF16, new long[] {5, 6}, "floats"),
                new Case("q8.matrix", DType.Q8_0, new long[] {4, 64}, "floats"),
                new Case("q8.3d", DType.Q8_0, new long[] {2, 2, 32}, "encoded"),
                new Case("q8.rows", DType.Q8_0, new long[] {9, 96}, "rows"),
                new Case("q4.matrix", DType.Q4_0, new long[] {3, 32}, "rows"),
                new Case("q4.wide", DType.Q4_0, new long[] {5, 96}, "floats"),
                new Case("q4.encoded", DType.Q4_0, new long[] {2, 64}, "encoded"));
        Random rnd = new Random(7);
        Map<String, float[]> values = new LinkedHashMap<>();
        GgufWriter w = new GgufWriter().putString("general.architecture", "test");
        try (Arena arena = Arena.ofConfined()) {
            for (Case c : cases) {
                float[] v = new float[(int) Tensor.elements(c.shape)];
                for (int i = 0; i < v.length; i++) v[i] = (float) rnd.nextGaussian() * (i % 7 + 1);
                values.put(c.name, v);
                int cols = (int) c.shape[c.shape.length - 1];
                switch (c.source) {
                    case "floats" -> w.addTensor(c.name, c.type, c.shape, v);
                    case "rows" -> w.addTensor(c.name, c.type, c.shape,
                            (first, n, dst) -> System.arraycopy(v, (int) first * cols, dst, 0, n * cols));
                    case "encoded" -> w.addTensor(c.name, c.type, c.shape, encode(arena, c.type, v));
                    default -> throw new AssertionError(c.source);
                }
            }
            Path file = dir.resolve("tensors.gguf");
            w.write(file);
            assertEquals(0, Files.size(file) % 32, "the last tensor is padded too, as llama.cpp expects");

            try (GgufFile g = GgufFile.open(file)) {
                assertEquals(cases.stream().map(Case::name).toList(), g.tensors().stream().map(Tensor::name).toList());
                for (Case c : cases) {
                    Tensor t = g.tensor(c.name);
                    float[] v = values.get(c.name);
                    assertEquals(c.type, t.dtype(), c.name);
                    assertArrayEquals(c.shape, t.shape(), c.name);
                    assertTrue(t.data().isMapped() && t.data().isReadOnly(), c.name + " is a slice of the read-only mapping");
                    assertEquals(0, t.data().address() % 32, c.name + " is 32-byte aligned");
                    assertArrayEquals(encode(arena, c.type, v).toArray(ValueLayout.JAVA_BYTE),
                            t.data().toArray(ValueLayout.JAVA_BYTE), c.name + ": bytes are Codec.encode's");
                    float[] back = new float[v.length];
                    Codec.decode(t.dtype(), t.data(), 0, back, 0, back.length);
                    assertDecodedWithinBound(c.name, c.type, v, back);
                }
            }
        }
    }

    @Test
    void shapeOutInIsWrittenAsNeInOutAndReadBackRowMajor() throws IOException {
        Path file = dir.resolve("shape.gguf");
        float[] rowMajor = {0, 1, 2, 10, 11, 12}; // [out=2, in=3]: row r, column c holds 10r + c
        new GgufWriter().addTensor("w", DType.F32, new long[] {2, 3}, rowMajor).write(file);

        // Read the tensor info with a plain ByteBuffer, independently of GgufFile.
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(0x46554747, b.getInt());
        assertEquals(3, b.getInt());
        assertEquals(1, b.getLong(), "tensor count");
        assertEquals(1, b.getLong(), "metadata count: general.alignment");
        assertEquals("general.alignment", string(b));
        assertEquals(GgufValueType.UINT32.id(), b.getInt());
        assertEquals(32, b.getInt());
        assertEquals("w", string(b));
        assertEquals(2, b.getInt(), "n_dims");
        assertEquals(3, b.getLong(), "ne[0] is the contiguous dimension: in");
        assertEquals(2, b.getLong(), "ne[1]: out");
        assertEquals(DType.F32.ggmlType(), b.getInt());
        assertEquals(0, b.getLong(), "offset");
        int dataStart = (b.position() + 31) / 32 * 32;
        for (int i = 0; i < 6; i++) assertEquals(rowMajor[i], b.getFloat(dataStart + 4 * i));

        try (GgufFile g = GgufFile.open(file)) {
            Tensor t = g.tensor("w");
            assertArrayEquals(new long[] {2, 3}, t.shape());
            assertEquals(2, t.rows());
            assertEquals(3, t.cols());
            assertEquals(dataStart, g.dataOffset());
            for (int r = 0; r < 2; r++) {
                for (int c = 0; c < 3; c++) assertEquals(10 * r + c, t.data().get(Codec.F32, 4L * (r * 3 + c)));
            }
        }
    }

    @Test
    void largeTensorIsEncodedAChunkOfRowsAtATime() throws IOException {
        int rows = 4096, cols = 4096;
        AtomicInteger largestChunk = new AtomicInteger();
        AtomicLong nextRow = new AtomicLong();
        Path file = dir.resolve("large.gguf");
        new GgufWriter().addTensor("big", DType.Q8_0, new long[] {rows, cols}, (first, n, dst) -> {
            assertEquals(nextRow.get(), first, "rows are asked for in order, once");
            nextRow.addAndGet(n);
            largestChunk.accumulateAndGet(n * cols, Math::max);
            for (int r = 0; r < n; r++) {
                for (int c = 0; c < cols; c++) dst[r * cols + c] = value(first + r, c);
            }
        }).write(file);

        assertEquals(rows, nextRow.get());
        assertTrue(largestChunk.get() <= 1 << 20, "at most 1M values (4 MiB) on the heap at once: " + largestChunk.get());
        try (GgufFile g = GgufFile.open(file)) {
            Tensor t = g.tensor("big");
            assertEquals(DType.Q8_0.bytesFor((long) rows * cols), t.data().byteSize());
            float[] row = new float[cols], expected = new float[cols];
            for (int r : new int[] {0, 1, 2047, 4095}) {
                Codec.decode(DType.Q8_0, t.data(), (long) r * cols, row, 0, cols);
                for (int c = 0; c < cols; c++) expected[c] = value(r, c);
                assertDecodedWithinBound("big row " + r, DType.Q8_0, expected, row);
            }
        }
    }

    @Test
    void tensorsCopiedFromAGgufFileKeepTheirBytes() throws IOException {
        Path first = dir.resolve("first.gguf"), second = dir.resolve("second.gguf");
        float[] v = new float[64];
        for (int i = 0; i < v.length; i++) v[i] = i - 30.5f;
        new GgufWriter().addTensor("q", DType.Q4_0, new long[] {2, 32}, v).write(first);
        try (GgufFile a = GgufFile.open(first)) {
            GgufWriter w = new GgufWriter();
            for (Tensor t : a.tensors()) w.addTensor(t);
            w.write(second);
            try (GgufFile b = GgufFile.open(second)) {
                assertArrayEquals(a.tensor("q").data().toArray(ValueLayout.JAVA_BYTE),
                        b.tensor("q").data().toArray(ValueLayout.JAVA_BYTE));
            }
        }
    }

    @Test
    void tensorsAreUnusableAfterClose() throws IOException {
        Path file = dir.resolve("closed.gguf");
        new GgufWriter().addTensor("w", DType.F32, new long[] {4}, new float[4]).write(file);
        GgufFile g = GgufFile.open(file);
        Tensor t = g.tensor("w");
        g.close();
        assertThrows(IllegalStateException.class, () -> t.data().get(Codec.F32, 0));
    }

    @Test
    void writerRejectsWhatLlamaCppCouldNotRead() {
        GgufWriter w = new GgufWriter().addTensor("w", DType.F32, new long[] {4}, new float[4]);
        assertIllegal(() -> w.addTensor("w", DType.F32, new long[] {4}, new float[4]), "'w' was added twice");
        assertIllegal(() -> w.addTensor("q", DType.Q8_0, new long[] {2, 48}, new float[96]), "multiple of 32");
        assertIllegal(() -> w.addTensor("x".repeat(64), DType.F32, new long[] {1}, new float[1]), "over 63 bytes");
        assertIllegal(() -> w.addTensor("five", DType.F32, new long[] {1, 1, 1, 1, 1}, new float[1]), "1 to 4 dimensions");
        assertIllegal(() -> w.addTensor("zero", DType.F32, new long[] {0, 4}, new float[0]), "dimension < 1");
        assertIllegal(() -> w.addTensor("n", DType.F32, new long[] {2, 2}, new float[3]), "has 4 values, got 3");
        assertIllegal(() -> w.addTensor("e", DType.F16, new long[] {2, 2}, MemorySegment.ofArray(new byte[4])), "needs 8 bytes, got 4");
        assertIllegal(() -> w.putUInt8("k", 256), "outside [0, 255]");
        assertIllegal(() -> w.putUInt32("k", -1), "outside [0, 4294967295]");
        assertIllegal(() -> w.putArray("k", GgufValueType.INT8, new int[] {200}), "outside [-128, 127]");
        assertIllegal(() -> w.putArray("k", GgufValueType.FLOAT32, new int[] {1}), "expected a float[]");
        assertIllegal(() -> w.putUInt32("general.alignment", 64), "set by the writer");
    }

    // ---- helpers ---------------------------------------------------------------------------------------------

    private static float value(long r, int c) { return (float) Math.sin(r * 0.37 + c * 0.011) * (1 + r % 5); }

    private static MemorySegment encode(Arena arena, DType type, float[] v) {
        MemorySegment s = arena.allocate(type.bytesFor(v.length));
        Codec.encode(type, v, 0, v.length, s, 0);
        return s;
    }

    /**
     * F32 exactly; F16 and BF16 exactly as one rounding to that format; Q8_0 and Q4_0 within half a step of the
     * block's scale d, plus the error of storing d in fp16 (relative 2^-11, times the largest quant). Q4_0 maps
     * the block's extreme to -8, so values of the other sign beyond 7.5 steps are clamped to +7 steps: their
     * error is up to one step.
     */
    private static void assertDecodedWithinBound(String name, DType type, float[] expected, float[] actual) {
        for (int i = 0; i < expected.length; i++) {
            float x = expected[i];
            switch (type) {
                case F32 -> assertEquals(x, actual[i], name + "[" + i + "]");
                case F16 -> assertEquals(Halfs.f16ToFloat(Halfs.floatToF16(x)), actual[i], name + "[" + i + "]");
                case BF16 -> assertEquals(Halfs.bf16ToFloat(Halfs.floatToBf16(x)), actual[i], name + "[" + i + "]");
                case Q8_0, Q4_0 -> {
                    int block = i / 32 * 32;
                    float extreme = 0;
                    for (int j = block; j < block + 32; j++) if (Math.abs(expected[j]) > Math.abs(extreme)) extreme = expected[j];
                    float d = type == DType.Q8_0 ? Math.abs(extreme) / 127 : extreme / -8;
                    int qmax = type == DType.Q8_0 ? 127 : 8;
                    float steps = d == 0 ? 0 : x / d;
                    float halfStep = type == DType.Q4_0 && steps > 7.5f ? steps - 7 : 0.5f;
                    float bound = Math.abs(d) * (halfStep + qmax * 0x1p-11f + 1e-5f) + 1e-7f;
                    assertTrue(Math.abs(x - actual[i]) <= bound,
                            name + "[" + i + "]: " + x + " decoded as " + actual[i] + ", bound " + bound);
                }
            }
        }
    }

    private static String string(ByteBuffer b) {
        byte[] s = new byte[(int) b.getLong()];
        b.get(s);
        return new String(s, StandardCharsets.UTF_8);
    }

    static void assertMessage(Runnable r, Path file, String... parts) {
        ModelFormatException e = assertThrows(ModelFormatException.class, r::run);
        assertTrue(e.getMessage().startsWith(file.toString() + ": "), e.getMessage());
        for (String p : parts) assertTrue(e.getMessage().contains(p), "'" + p + "' not in: " + e.getMessage());
    }

    private static void assertIllegal(Runnable r, String part) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, r::run);
        assertTrue(e.getMessage().contains(part), "'" + part + "' not in: " + e.getMessage());
    }
}
