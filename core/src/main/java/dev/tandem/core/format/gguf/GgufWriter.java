package dev.tandem.core.format.gguf;

import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds a GGUF v3 file: metadata and tensors are collected first, then {@link #write(Path)} streams the header and
 * each tensor's data to disk, encoding float sources a chunk of rows at a time so that no tensor is ever whole on
 * the heap. Files follow what llama.cpp's reader checks: {@code general.alignment} = 32, tensors laid out in order,
 * each padded to 32 bytes (the last one too), names under 64 bytes, at most 4 dimensions.
 *
 * <p>Shapes are given Tandem's way, row-major [out, in]; they are written reversed as GGUF's ne = [in, out].
 */
public final class GgufWriter {
    public static final int ALIGNMENT = 32;
    static final int MAX_NAME_BYTES = 63; // GGML_MAX_NAME is 64 with the terminating NUL
    private static final int CHUNK_VALUES = 1 << 20; // floats encoded per write: 4 MiB of heap

    /** Supplies a tensor's values row by row: fills {@code dst[0, rowCount * cols)} with rows from {@code firstRow}. */
    @FunctionalInterface
    public interface RowSource {
        void read(long firstRow, int rowCount, float[] dst);
    }

    private record Value(GgufValueType type, GgufValueType elementType, Object value) {}

    private record Pending(String name, DType type, long[] shape, MemorySegment encoded, RowSource rows) {
        long bytes() { return type.bytesFor(Tensor.elements(shape)); }
    }

    private final Map<String, Value> metadata = new LinkedHashMap<>();
    private final Map<String, Pending> tensors = new LinkedHashMap<>();

    // ---- metadata: a later put to the same key replaces the value -------------------------------------------

    public GgufWriter putString(String key, String value) { return put(key, GgufValueType.STRING, value); }

    public GgufWriter putBool(String key, boolean value) { return put(key, GgufValueType.BOOL, value); }

    public GgufWriter putUInt8(String key, int value) { return putInt(key, GgufValueType.UINT8, value); }

    public GgufWriter putInt8(String key, int value) { return putInt(key, GgufValueType.INT8, value); }

    public GgufWriter putUInt16(String key, int value) { return putInt(key, GgufValueType.UINT16, value); }

    public GgufWriter putInt16(String key, int value) { return putInt(key, GgufValueType.INT16, value); }

    public GgufWriter putUInt32(String key, long value) {
        return put(key, GgufValueType.UINT32, checkRange(key, value, 0, 0xffff_ffffL));
    }

    public GgufWriter putInt32(String key, int value) { return put(key, GgufValueType.INT32, value); }

    /** The 64 bits are written as they are: pass -1 for 2^64 - 1. */
    public GgufWriter putUInt64(String key, long value) { return put(key, GgufValueType.UINT64, value); }

    public GgufWriter putInt64(String key, long value) { return put(key, GgufValueType.INT64, value); }

    public GgufWriter putFloat32(String key, float value) { return put(key, GgufValueType.FLOAT32, value); }

    public GgufWriter putFloat64(String key, double value) { return put(key, GgufValueType.FLOAT64, value); }

    public GgufWriter putStringArray(String key, List<String> values) {
        return putArray(key, GgufValueType.STRING, values);
    }

    public GgufWriter putFloat32Array(String key, float[] values) {
        return putArray(key, GgufValueType.FLOAT32, values);
    }

    public GgufWriter putInt32Array(String key, int[] values) { return putArray(key, GgufValueType.INT32, values); }

    /**
     * An array of any element type but ARRAY, given as {@link GgufFile#metadata()} represents it: {@code int[]}
     * for UINT8, INT8, UINT16, INT16, INT32; {@code long[]} for UINT32, UINT64, INT64; {@code float[]},
     * {@code double[]}, {@code boolean[]}, {@code List<String>}. (llama.cpp reads no arrays of arrays.)
     */
    public GgufWriter putArray(String key, GgufValueType elementType, Object values) {
        Object copy = switch (elementType) {
            case UINT8, INT8, UINT16, INT16, INT32 -> {
                int[] a = ((int[]) arrayOf(key, values, int[].class)).clone();
                long[] range = intRange(elementType);
                for (int v : a) checkRange(key, v, range[0], range[1]);
                yield a;
            }
            case UINT32, UINT64, INT64 -> {
                long[] a = ((long[]) arrayOf(key, values, long[].class)).clone();
                if (elementType == GgufValueType.UINT32) for (long v : a) checkRange(key, v, 0, 0xffff_ffffL);
                yield a;
            }
            case FLOAT32 -> ((float[]) arrayOf(key, values, float[].class)).clone();
            case FLOAT64 -> ((double[]) arrayOf(key, values, double[].class)).clone();
            case BOOL -> ((boolean[]) arrayOf(key, values, boolean[].class)).clone();
            case STRING -> List.copyOf(
                    ((List<?>) arrayOf(key, values, List.class)).stream().map(String.class::cast).toList());
            case ARRAY -> throw new IllegalArgumentException("metadata key '" + key
                    + "': arrays of arrays are not supported");
        };
        checkKey(key);
        metadata.put(key, new Value(GgufValueType.ARRAY, elementType, copy));
        return this;
    }

    private GgufWriter putInt(String key, GgufValueType type, int value) {
        long[] range = intRange(type);
        return put(key, type, checkRange(key, value, range[0], range[1]));
    }

    private GgufWriter put(String key, GgufValueType type, Object value) {
        checkKey(key);
        if (value == null) throw new IllegalArgumentException("metadata key '" + key + "': value is null");
        metadata.put(key, new Value(type, null, value));
        return this;
    }

    private static void checkKey(String key) {
        if (key == null || key.isEmpty()) throw new IllegalArgumentException("metadata key must not be empty");
        if (key.getBytes(StandardCharsets.UTF_8).length > 0xffff) {
            throw new IllegalArgumentException("metadata key '" + key.substring(0, 40) + "...' is over 65535 bytes");
        }
        if (key.equals("general.alignment")) {
            throw new IllegalArgumentException("general.alignment is set by the writer (" + ALIGNMENT + ")");
        }
    }

    private static <T> T checkRange(String key, T value, long min, long max) {
        long v = ((Number) value).longValue();
        if (v < min || v > max) {
            throw new IllegalArgumentException("metadata key '" + key + "': " + v + " is outside [" + min + ", "
                    + max + "]");
        }
        return value;
    }

    private static long[] intRange(GgufValueType t) {
        return switch (t) {
            case UINT8 -> new long[] {0, 0xff};
            case INT8 -> new long[] {-128, 127};
            case UINT16 -> new long[] {0, 0xffff};
            case INT16 -> new long[] {Short.MIN_VALUE, Short.MAX_VALUE};
            default -> new long[] {Integer.MIN_VALUE, Integer.MAX_VALUE};
        };
    }

    private static Object arrayOf(String key, Object values, Class<?> expected) {
        if (!expected.isInstance(values)) {
            throw new IllegalArgumentException("metadata key '" + key + "': expected a " + expected.getSimpleName()
                    + ", got " + (values == null ? "null" : values.getClass().getSimpleName()));
        }
        return values;
    }

    // ---- tensors ---------------------------------------------------------------------------------------------

    /** A tensor whose bytes are already encoded in {@code type}'s layout; they are read during {@link #write}. */
    public GgufWriter addTensor(String name, DType type, long[] shape, MemorySegment encoded) {
        long[] s = checkTensor(name, type, shape);
        long need = type.bytesFor(Tensor.elements(s));
        if (encoded.byteSize() != need) {
            throw new IllegalArgumentException("tensor '" + name + "': " + type + " " + Arrays.toString(s) + " needs "
                    + need + " bytes, got " + encoded.byteSize());
        }
        tensors.put(name, new Pending(name, type, s, encoded, null));
        return this;
    }

    /** Copies a tensor as it is, e.g. from a {@link GgufFile}. */
    public GgufWriter addTensor(Tensor tensor) {
        return addTensor(tensor.name(), tensor.dtype(), tensor.shape(), tensor.data());
    }

    /** Row-major float values, encoded to {@code type} with {@link Codec#encode} while writing. */
    public GgufWriter addTensor(String name, DType type, long[] shape, float[] values) {
        long[] s = checkTensor(name, type, shape);
        if (values.length != Tensor.elements(s)) {
            throw new IllegalArgumentException("tensor '" + name + "': shape " + Arrays.toString(s) + " has "
                    + Tensor.elements(s) + " values, got " + values.length);
        }
        int cols = (int) s[s.length - 1];
        return add(name, type, s,
                (first, count, dst) -> System.arraycopy(values, Math.toIntExact(first * cols), dst, 0, count * cols));
    }

    /** Values produced on demand, a chunk of rows at a time, and encoded to {@code type} while writing. */
    public GgufWriter addTensor(String name, DType type, long[] shape, RowSource rows) {
        return add(name, type, checkTensor(name, type, shape), rows);
    }

    private GgufWriter add(String name, DType type, long[] shape, RowSource rows) {
        if (shape[shape.length - 1] > CHUNK_VALUES * 64L) {
            throw new IllegalArgumentException("tensor '" + name + "': rows of " + shape[shape.length - 1]
                    + " values are too long to encode");
        }
        tensors.put(name, new Pending(name, type, shape, null, rows));
        return this;
    }

    private long[] checkTensor(String name, DType type, long[] shape) {
        if (name == null || name.isEmpty()) throw new IllegalArgumentException("tensor name must not be empty");
        if (name.getBytes(StandardCharsets.UTF_8).length > MAX_NAME_BYTES) {
            throw new IllegalArgumentException("tensor '" + name + "': name is over " + MAX_NAME_BYTES + " bytes");
        }
        if (tensors.containsKey(name)) throw new IllegalArgumentException("tensor '" + name + "' was added twice");
        if (shape.length < 1 || shape.length > GgufFile.MAX_DIMS) {
            throw new IllegalArgumentException("tensor '" + name + "': shape " + Arrays.toString(shape)
                    + " must have 1 to " + GgufFile.MAX_DIMS + " dimensions");
        }
        long elements = 1;
        for (long d : shape) {
            if (d < 1) {
                throw new IllegalArgumentException("tensor '" + name + "': shape " + Arrays.toString(shape)
                        + " has a dimension < 1");
            }
            elements = Math.multiplyExact(elements, d);
        }
        if (shape[shape.length - 1] % type.blockSize() != 0) {
            throw new IllegalArgumentException("tensor '" + name + "': " + type + " needs the last dimension of "
                    + Arrays.toString(shape) + " to be a multiple of " + type.blockSize());
        }
        return shape.clone();
    }

    // ---- writing ---------------------------------------------------------------------------------------------

    /** Writes the file, replacing {@code file} if it exists. */
    public void write(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING);
             Arena scratch = Arena.ofConfined()) {
            Out out = new Out(ch);
            out.u32(GgufFile.MAGIC);
            out.u32(3);
            out.u64(tensors.size());
            out.u64(metadata.size() + 1L);
            for (Map.Entry<String, Value> e : metadata.entrySet()) writeKeyValue(out, e.getKey(), e.getValue());
            writeKeyValue(out, "general.alignment", new Value(GgufValueType.UINT32, null, (long) ALIGNMENT));

            long offset = 0; // tensors follow each other in the data section, each padded to the alignment
            for (Pending t : tensors.values()) {
                out.string(t.name);
                out.u32(t.shape.length);
                for (int d = t.shape.length - 1; d >= 0; d--) out.u64(t.shape[d]);
                out.u32(t.type.ggmlType());
                out.u64(offset);
                offset += GgufFile.alignUp(t.bytes(), ALIGNMENT);
            }
            out.pad();
            for (Pending t : tensors.values()) {
                if (t.encoded != null) out.segment(t.encoded);
                else writeEncoded(out, t, scratch);
                out.pad();
            }
            out.flush();
        }
    }

    private static void writeEncoded(Out out, Pending t, Arena scratch) throws IOException {
        int cols = (int) t.shape[t.shape.length - 1];
        long rows = Tensor.elements(t.shape) / cols;
        int chunkRows = Math.max(1, CHUNK_VALUES / cols);
        float[] values = new float[chunkRows * cols];
        MemorySegment encoded = scratch.allocate(t.type.bytesFor((long) chunkRows * cols), ALIGNMENT);
        for (long r = 0; r < rows; r += chunkRows) {
            int n = (int) Math.min(chunkRows, rows - r);
            t.rows.read(r, n, values);
            long bytes = Codec.encode(t.type, values, 0, n * cols, encoded, 0);
            out.segment(encoded.asSlice(0, bytes));
        }
    }

    private static void writeKeyValue(Out out, String key, Value v) throws IOException {
        out.string(key);
        out.u32(v.type.id());
        if (v.type != GgufValueType.ARRAY) {
            writeScalar(out, v.type, v.value);
            return;
        }
        out.u32(v.elementType.id());
        switch (v.value) {
            case int[] a -> {
                out.u64(a.length);
                for (int x : a) writeScalar(out, v.elementType, x);
            }
            case long[] a -> {
                out.u64(a.length);
                for (long x : a) writeScalar(out, v.elementType, x);
            }
            case float[] a -> {
                out.u64(a.length);
                for (float x : a) out.u32(Float.floatToRawIntBits(x));
            }
            case double[] a -> {
                out.u64(a.length);
                for (double x : a) out.u64(Double.doubleToRawLongBits(x));
            }
            case boolean[] a -> {
                out.u64(a.length);
                for (boolean x : a) out.u8(x ? 1 : 0);
            }
            case List<?> a -> {
                out.u64(a.size());
                for (Object x : a) out.string((String) x);
            }
            default -> throw new AssertionError(v.value.getClass());
        }
    }

    private static void writeScalar(Out out, GgufValueType type, Object v) throws IOException {
        switch (type) {
            case UINT8, INT8 -> out.u8(((Number) v).intValue());
            case UINT16, INT16 -> out.u16(((Number) v).intValue());
            case UINT32, INT32 -> out.u32(((Number) v).intValue()); // a uint32's low 32 bits
            case UINT64, INT64 -> out.u64(((Number) v).longValue());
            case FLOAT32 -> out.u32(Float.floatToRawIntBits((Float) v));
            case FLOAT64 -> out.u64(Double.doubleToRawLongBits((Double) v));
            case BOOL -> out.u8((Boolean) v ? 1 : 0);
            case STRING -> out.string((String) v);
            case ARRAY -> throw new AssertionError("arrays are written by writeKeyValue");
        }
    }

    /** Little-endian output through a 64 KiB buffer; large byte runs go straight to the channel. */
    private static final class Out {
        private final FileChannel ch;
        private final ByteBuffer buf = ByteBuffer.allocateDirect(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        private long flushed;

        Out(FileChannel ch) { this.ch = ch; }

        long position() { return flushed + buf.position(); }

        private void room(int n) throws IOException {
            if (buf.remaining() < n) flush();
        }

        void u8(int v) throws IOException { room(1); buf.put((byte) v); }

        void u16(int v) throws IOException { room(2); buf.putShort((short) v); }

        void u32(int v) throws IOException { room(4); buf.putInt(v); }

        void u64(long v) throws IOException { room(8); buf.putLong(v); }

        /** uint64 byte length, then the UTF-8 bytes. */
        void string(String s) throws IOException {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            if (b.length <= buf.capacity()) {
                room(b.length);
                buf.put(b);
            } else {
                flush();
                writeFully(ByteBuffer.wrap(b));
            }
        }

        void segment(MemorySegment s) throws IOException {
            flush();
            for (long off = 0; off < s.byteSize(); off += 1 << 24) { // asByteBuffer is limited to 2 GiB
                writeFully(s.asSlice(off, Math.min(1 << 24, s.byteSize() - off)).asByteBuffer());
            }
        }

        /** Zeros up to the next multiple of the alignment. */
        void pad() throws IOException {
            while (position() % ALIGNMENT != 0) u8(0);
        }

        void flush() throws IOException {
            buf.flip();
            writeFully(buf);
            buf.clear();
        }

        private void writeFully(ByteBuffer b) throws IOException {
            while (b.hasRemaining()) flushed += ch.write(b);
        }
    }
}
