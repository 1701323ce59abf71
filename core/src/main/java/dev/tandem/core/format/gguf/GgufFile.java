package dev.tandem.core.format.gguf;

import dev.tandem.core.format.ModelFormatException;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * A GGUF model file (version 3, or 2 which has the same layout), memory-mapped whole. Metadata is parsed onto
 * the heap; tensors are zero-copy slices of the mapping and stay valid until {@link #close()}.
 *
 * <p>The layout, all little-endian: magic "GGUF", uint32 version, uint64 tensor count, uint64 metadata count,
 * the metadata (string key, uint32 value type, value), the tensor infos (string name, uint32 n_dims, uint64
 * ne[n_dims], uint32 ggml type, uint64 offset into the data section), padding to {@code general.alignment}
 * (default 32), then the tensor data. GGUF lists dimensions innermost first (ne[0] is contiguous); Tandem's
 * shapes are row-major, so ne = [in, out] becomes shape [out, in].
 */
public final class GgufFile implements AutoCloseable {
    static final int MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
    static final int DEFAULT_ALIGNMENT = 32;
    static final int MAX_DIMS = 4; // GGML_MAX_DIMS
    private static final int MAX_ARRAY_DEPTH = 8; // arrays of arrays: bounds recursion on a crafted file

    /** ggml_type names by id, for messages about types Tandem does not read (null: id unused). */
    private static final String[] GGML_TYPE_NAMES = {
        "F32", "F16", "Q4_0", "Q4_1", null, null, "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
        "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16",
        "I32", "I64", "F64", "IQ1_M", "BF16", null, null, null, "TQ1_0", "TQ2_0", null, null, null, "MXFP4"};

    private record Info(String name, long[] ne, DType type, long offset) {}

    private final String file;
    private final Arena arena;
    private final int version;
    private final int alignment;
    private final long dataOffset;
    private final Map<String, Object> metadata = new LinkedHashMap<>();
    private final Map<String, GgufValueType> types = new LinkedHashMap<>();
    private final Map<String, GgufValueType> elementTypes = new LinkedHashMap<>();
    private final Map<String, Tensor> tensors = new LinkedHashMap<>();

    /** Maps {@code file} and parses its header; throws {@link ModelFormatException} if it is not a usable GGUF. */
    public static GgufFile open(Path file) throws IOException {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            MemorySegment mapping = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            return new GgufFile(file.toString(), arena, mapping);
        } catch (Throwable t) {
            arena.close();
            throw t;
        }
    }

    private GgufFile(String file, Arena arena, MemorySegment mapping) {
        this.file = file;
        this.arena = arena;
        GgufCursor in = new GgufCursor(mapping, file);
        try {
            if (mapping.byteSize() < 8) {
                throw in.error("file is " + mapping.byteSize() + " bytes, too short for a GGUF header");
            }
            int magic = in.u32("magic");
            if (magic != MAGIC) {
                throw in.error("not a GGUF file: it starts with " + hex(magic) + ", expected the magic 'GGUF'");
            }
            version = in.u32("version");
            if (version != 2 && version != 3) {
                int swapped = Integer.reverseBytes(version);
                String hint = version == 1 ? " (GGUF v1 is obsolete: re-convert the model with a current llama.cpp)"
                        : swapped == 2 || swapped == 3 ? " (it looks big-endian; Tandem reads little-endian GGUF)"
                        : "";
                throw in.error("unsupported GGUF version " + Integer.toUnsignedString(version) + ", expected 2 or 3"
                        + hint);
            }
            // Nothing is allocated by these counts, and each item takes bytes: an absurd count fails at the end
            // of the file, naming the count, without a huge allocation or a long loop.
            long tensorCount = in.u64("tensor count");
            long kvCount = in.u64("metadata count");
            String kvOf = " of " + Long.toUnsignedString(kvCount);
            for (long i = 0; Long.compareUnsigned(i, kvCount) < 0; i++) readKeyValue(in, "metadata key #" + i + kvOf);
            alignment = readAlignment(in);

            List<Info> infos = new ArrayList<>();
            String tensorOf = " of " + Long.toUnsignedString(tensorCount);
            for (long i = 0; Long.compareUnsigned(i, tensorCount) < 0; i++) {
                infos.add(readTensorInfo(in, "tensor info #" + i + tensorOf));
            }
            // The data section starts at the next multiple of the alignment after the infos.
            dataOffset = alignUp(in.position(), alignment);
            for (Info info : infos) {
                if (tensors.containsKey(info.name)) throw in.error("duplicate tensor name '" + info.name + "'");
                tensors.put(info.name, slice(in, mapping, info));
            }
        } catch (IndexOutOfBoundsException e) {
            // The cursor checks bounds before every read; this only guards against a missed check.
            throw new ModelFormatException(file + ": malformed GGUF (read outside the file at byte " + in.position()
                    + ")", e);
        }
    }

    private void readKeyValue(GgufCursor in, String position) {
        String key = in.string(position);
        String field = "metadata key '" + key + "'";
        if (metadata.containsKey(key)) throw in.error("duplicate " + field);
        int typeId = in.u32(field + " value type");
        GgufValueType type = GgufValueType.fromId(typeId);
        if (type == null) {
            throw in.error(field + " has unknown value type " + Integer.toUnsignedString(typeId)
                    + ", expected 0 to 12");
        }
        types.put(key, type);
        if (type == GgufValueType.ARRAY) {
            int elementId = in.u32(field + " array element type");
            GgufValueType element = GgufValueType.fromId(elementId);
            if (element == null) {
                throw in.error(field + " is an array of unknown value type " + Integer.toUnsignedString(elementId)
                        + ", expected 0 to 12");
            }
            elementTypes.put(key, element);
            metadata.put(key, readArrayBody(in, element, field, 1));
        } else {
            metadata.put(key, readScalar(in, type, field));
        }
    }

    private static Object readScalar(GgufCursor in, GgufValueType type, String field) {
        return switch (type) {
            case UINT8 -> in.u8(field);
            case INT8 -> (int) (byte) in.u8(field);
            case UINT16 -> in.u16(field);
            case INT16 -> (int) (short) in.u16(field);
            case UINT32 -> Integer.toUnsignedLong(in.u32(field));
            case INT32 -> in.u32(field);
            case FLOAT32 -> in.f32(field);
            case BOOL -> in.bool(field);
            case STRING -> in.string(field);
            case UINT64, INT64 -> in.u64(field);
            case FLOAT64 -> in.f64(field);
            case ARRAY -> throw new IllegalArgumentException("arrays are read by readArrayBody");
        };
    }

    /** Reads an array's count and values; its element type has been read already. */
    private static Object readArrayBody(GgufCursor in, GgufValueType element, String field, int depth) {
        long count = in.checkCount(in.u64(field + " array length"), element.minBytes(), field + " array length");
        if (count > Integer.MAX_VALUE - 16) throw in.error(field + " array length " + count + " is too large");
        int n = (int) count;
        switch (element) {
            case UINT8, INT8, UINT16, INT16, INT32 -> {
                int[] a = new int[n];
                for (int i = 0; i < n; i++) a[i] = (Integer) readScalar(in, element, field);
                return a;
            }
            case UINT32, UINT64, INT64 -> {
                long[] a = new long[n];
                for (int i = 0; i < n; i++) a[i] = (Long) readScalar(in, element, field);
                return a;
            }
            case FLOAT32 -> {
                float[] a = new float[n];
                for (int i = 0; i < n; i++) a[i] = in.f32(field);
                return a;
            }
            case FLOAT64 -> {
                double[] a = new double[n];
                for (int i = 0; i < n; i++) a[i] = in.f64(field);
                return a;
            }
            case BOOL -> {
                boolean[] a = new boolean[n];
                for (int i = 0; i < n; i++) a[i] = in.bool(field);
                return a;
            }
            case STRING -> {
                List<String> a = new ArrayList<>(n);
                for (int i = 0; i < n; i++) a.add(in.string(field));
                return Collections.unmodifiableList(a);
            }
            case ARRAY -> {
                if (depth >= MAX_ARRAY_DEPTH) throw in.error(field + " nests arrays deeper than " + MAX_ARRAY_DEPTH);
                List<Object> a = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                    int id = in.u32(field + " array element type");
                    GgufValueType inner = GgufValueType.fromId(id);
                    if (inner == null) {
                        throw in.error(field + " holds an array of unknown value type " + Integer.toUnsignedString(id));
                    }
                    a.add(readArrayBody(in, inner, field, depth + 1));
                }
                return Collections.unmodifiableList(a);
            }
            default -> throw new AssertionError(element);
        }
    }

    private int readAlignment(GgufCursor in) {
        Object v = metadata.get("general.alignment");
        if (v == null) return DEFAULT_ALIGNMENT;
        if (!(v instanceof Integer) && !(v instanceof Long)) throw wrongType("general.alignment", "a uint32");
        long a = ((Number) v).longValue();
        if (a <= 0 || a > 1 << 30 || Long.bitCount(a) != 1) {
            throw in.error("metadata key 'general.alignment' is " + a + ", expected a power of two");
        }
        return (int) a;
    }

    private Info readTensorInfo(GgufCursor in, String position) {
        String name = in.string(position + " name");
        String field = "tensor '" + name + "'";
        int nDims = in.u32(field + " n_dims");
        if (nDims < 1 || nDims > MAX_DIMS) {
            throw in.error(field + " has " + Integer.toUnsignedString(nDims) + " dimensions, expected 1 to "
                    + MAX_DIMS);
        }
        long[] ne = new long[nDims];
        long elements = 1;
        for (int d = 0; d < nDims; d++) {
            ne[d] = in.u64(field + " ne[" + d + "]");
            if (ne[d] <= 0) {
                throw in.error(field + " has ne[" + d + "] = " + Long.toUnsignedString(ne[d])
                        + ", expected at least 1");
            }
            elements = multiplyOrFail(in, elements, ne[d], field);
        }
        int typeId = in.u32(field + " type");
        DType type = DType.fromGgml(typeId);
        if (type == null) {
            String typeName = typeId >= 0 && typeId < GGML_TYPE_NAMES.length && GGML_TYPE_NAMES[typeId] != null
                    ? " (" + GGML_TYPE_NAMES[typeId] + ")" : " (unknown)";
            throw in.error(field + " has ggml type " + Integer.toUnsignedString(typeId) + typeName
                    + ", which Tandem does not read; supported: "
                    + Arrays.stream(DType.values()).map(Enum::name).collect(Collectors.joining(", ")));
        }
        if (ne[0] % type.blockSize() != 0) {
            throw in.error(field + " has rows of ne[0] = " + ne[0] + " values, expected a multiple of " + type
                    + "'s block of " + type.blockSize());
        }
        multiplyOrFail(in, elements / type.blockSize(), type.blockBytes(), field); // byte size must fit a long
        long offset = in.u64(field + " offset");
        return new Info(name, ne, type, offset);
    }

    private Tensor slice(GgufCursor in, MemorySegment mapping, Info info) {
        String field = "tensor '" + info.name + "'";
        if (Long.remainderUnsigned(info.offset, alignment) != 0) {
            throw in.error(field + " data offset " + Long.toUnsignedString(info.offset)
                    + " is not a multiple of the alignment " + alignment);
        }
        long bytes = info.type.bytesFor(Tensor.elements(info.ne));
        long start = dataOffset + info.offset; // negative if the offset is past Long.MAX_VALUE
        if (info.offset < 0 || start < 0 || start > mapping.byteSize() || bytes > mapping.byteSize() - start) {
            throw in.error(field + " data [offset " + Long.toUnsignedString(start) + ", " + bytes
                    + " bytes] runs past the end of the file (" + mapping.byteSize() + " bytes)");
        }
        long[] shape = new long[info.ne.length];
        for (int d = 0; d < shape.length; d++) shape[d] = info.ne[shape.length - 1 - d];
        return new Tensor(info.name, info.type, shape, mapping.asSlice(start, bytes));
    }

    private static long multiplyOrFail(GgufCursor in, long a, long b, String field) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw in.error(field + " is too large: its size overflows 64 bits");
        }
    }

    static long alignUp(long n, long alignment) { return (n + alignment - 1) / alignment * alignment; }

    private static String hex(int magic) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < 4; i++) s.append(String.format("%02x ", (magic >>> (8 * i)) & 0xff));
        return "bytes " + s.toString().trim();
    }

    // ---- header --------------------------------------------------------------------------------------------

    /** 2 or 3. */
    public int version() { return version; }

    /** The data section's alignment ({@code general.alignment}, default 32). */
    public int alignment() { return alignment; }

    /** Where the tensor data section starts in the file. */
    public long dataOffset() { return dataOffset; }

    // ---- metadata ------------------------------------------------------------------------------------------

    /** All key/values in file order, represented as {@link GgufValueType} describes. Arrays must not be modified. */
    public Map<String, Object> metadata() { return Collections.unmodifiableMap(metadata); }

    public boolean has(String key) { return metadata.containsKey(key); }

    /** The stored type of {@code key}: ARRAY for arrays. */
    public GgufValueType type(String key) {
        require(key, "a value");
        return types.get(key);
    }

    /** The element type of the array at {@code key}. */
    public GgufValueType elementType(String key) {
        require(key, "an array");
        if (!elementTypes.containsKey(key)) throw wrongType(key, "an array");
        return elementTypes.get(key);
    }

    public String getString(String key) {
        if (!(require(key, "a string") instanceof String s)) throw wrongType(key, "a string");
        return s;
    }

    public String getString(String key, String defaultValue) { return has(key) ? getString(key) : defaultValue; }

    /** Any integer type whose value fits in an int. */
    public int getInt(String key) { return (int) integer(key, Integer.MIN_VALUE, Integer.MAX_VALUE, "an int"); }

    public int getInt(String key, int defaultValue) { return has(key) ? getInt(key) : defaultValue; }

    /** Any integer type whose value fits in a long (a uint64 above Long.MAX_VALUE does not). */
    public long getLong(String key) { return integer(key, Long.MIN_VALUE, Long.MAX_VALUE, "a long"); }

    public long getLong(String key, long defaultValue) { return has(key) ? getLong(key) : defaultValue; }

    /** A float32, or a float64 rounded to float. */
    public float getFloat(String key) {
        Object v = require(key, "a float");
        if (v instanceof Float f) return f;
        if (v instanceof Double d) return d.floatValue();
        throw wrongType(key, "a float");
    }

    public float getFloat(String key, float defaultValue) { return has(key) ? getFloat(key) : defaultValue; }

    public boolean getBoolean(String key) {
        if (!(require(key, "a bool") instanceof Boolean b)) throw wrongType(key, "a bool");
        return b;
    }

    public boolean getBoolean(String key, boolean defaultValue) { return has(key) ? getBoolean(key) : defaultValue; }

    @SuppressWarnings("unchecked")
    public List<String> getStringArray(String key) {
        Object v = require(key, "an array of string");
        if (elementTypes.get(key) != GgufValueType.STRING) throw wrongType(key, "an array of string");
        return (List<String>) v;
    }

    /** A copy of a float32 array (or a float64 one rounded to float). */
    public float[] getFloatArray(String key) {
        Object v = require(key, "an array of float32");
        if (v instanceof float[] a) return a.clone();
        if (v instanceof double[] a) {
            float[] out = new float[a.length];
            for (int i = 0; i < a.length; i++) out[i] = (float) a[i];
            return out;
        }
        throw wrongType(key, "an array of float32");
    }

    /** A copy of an array of any integer type whose values all fit in an int. */
    public int[] getIntArray(String key) {
        Object v = require(key, "an array of integers");
        if (v instanceof int[] a) return a.clone();
        if (v instanceof long[] a) {
            boolean unsigned64 = elementTypes.get(key) == GgufValueType.UINT64;
            int[] out = new int[a.length];
            for (int i = 0; i < a.length; i++) {
                if (a[i] != (int) a[i] || (unsigned64 && a[i] < 0)) {
                    throw error("metadata key '" + key + "' element " + i + " = "
                            + (unsigned64 ? Long.toUnsignedString(a[i]) : a[i]) + " does not fit in an int");
                }
                out[i] = (int) a[i];
            }
            return out;
        }
        throw wrongType(key, "an array of integers");
    }

    private long integer(String key, long min, long max, String javaType) {
        Object v = require(key, "an integer");
        if (!(v instanceof Integer) && !(v instanceof Long)) throw wrongType(key, "an integer");
        long x = ((Number) v).longValue();
        boolean overflowedUnsigned = types.get(key) == GgufValueType.UINT64 && x < 0;
        if (overflowedUnsigned || x < min || x > max) {
            throw error("metadata key '" + key + "' is " + (overflowedUnsigned ? Long.toUnsignedString(x) : x)
                    + ", which does not fit in " + javaType);
        }
        return x;
    }

    private Object require(String key, String expected) {
        Object v = metadata.get(key);
        if (v == null) throw error("metadata key '" + key + "' is missing (expected " + expected + ")");
        return v;
    }

    private ModelFormatException wrongType(String key, String expected) {
        GgufValueType t = types.get(key);
        String name = t == GgufValueType.ARRAY ? "array of " + elementTypes.get(key).specName() : t.specName();
        String actual = (name.startsWith("i") || name.startsWith("a") ? "an " : "a ") + name;
        return error("metadata key '" + key + "' is " + actual + ", expected " + expected);
    }

    private ModelFormatException error(String message) { return new ModelFormatException(file + ": " + message); }

    // ---- tensors -------------------------------------------------------------------------------------------

    /** All tensors in file order, shapes row-major (GGUF's ne reversed). */
    public List<Tensor> tensors() { return List.copyOf(tensors.values()); }

    public boolean hasTensor(String name) { return tensors.containsKey(name); }

    public Tensor tensor(String name) {
        Tensor t = tensors.get(name);
        if (t == null) throw error("tensor '" + name + "' is missing");
        return t;
    }

    /** Unmaps the file: every tensor of this file becomes unusable. */
    @Override
    public void close() { arena.close(); }
}
