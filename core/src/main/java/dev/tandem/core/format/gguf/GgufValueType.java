package dev.tandem.core.format.gguf;

/**
 * The types a GGUF metadata value can have, with their ids in the file.
 *
 * <p>How {@link GgufFile#metadata()} represents them: the 8-, 16- and 32-bit signed types and the 8- and 16-bit
 * unsigned ones as {@code Integer}; UINT32, INT64 and UINT64 as {@code Long} (UINT64 keeps its 64 bits, so values
 * above {@code Long.MAX_VALUE} read as negative); FLOAT32 as {@code Float}, FLOAT64 as {@code Double}, BOOL as
 * {@code Boolean}, STRING as {@code String}. Arrays become {@code int[]}, {@code long[]}, {@code float[]},
 * {@code double[]}, {@code boolean[]} by the same rule, {@code List<String>} for strings and
 * {@code List<Object>} for arrays of arrays.
 */
public enum GgufValueType {
    UINT8(0, 1), INT8(1, 1), UINT16(2, 2), INT16(3, 2), UINT32(4, 4), INT32(5, 4), FLOAT32(6, 4), BOOL(7, 1),
    STRING(8, 8), ARRAY(9, 12), UINT64(10, 8), INT64(11, 8), FLOAT64(12, 8);

    private final int id;
    private final int minBytes;

    GgufValueType(int id, int minBytes) {
        this.id = id;
        this.minBytes = minBytes;
    }

    /** The id GGUF stores (gguf_type). */
    public int id() { return id; }

    /** The fewest bytes one value takes in the file: bounds an array's count by the bytes left before allocating. */
    int minBytes() { return minBytes; }

    public boolean isInteger() {
        return switch (this) {
            case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64 -> true;
            default -> false;
        };
    }

    /** Integers that need a {@code long} in Java (the rest fit an {@code int}). */
    boolean isWide() { return this == UINT32 || this == UINT64 || this == INT64; }

    /** The name the GGUF spec uses, lower case: "uint32", "string". */
    public String specName() { return name().toLowerCase(java.util.Locale.ROOT); }

    /** The type with this id, or null. */
    public static GgufValueType fromId(int id) {
        for (GgufValueType t : values()) {
            if (t.id == id) return t;
        }
        return null;
    }
}
