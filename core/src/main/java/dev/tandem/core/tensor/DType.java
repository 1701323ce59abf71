package dev.tandem.core.tensor;

/**
 * Storage formats of weight tensors. Block formats (Q8_0, Q4_0) store {@link #blockSize()} elements in
 * {@link #blockBytes()} bytes, in GGUF's layout: an fp16 scale followed by the quants.
 */
public enum DType {
    F32(1, 4, 0),
    F16(1, 2, 1),
    BF16(1, 2, 30),
    /** 32 int8 values times one fp16 scale: x = d * q. */
    Q8_0(32, 34, 8),
    /** 32 4-bit values times one fp16 scale: x = d * (q - 8); element j in the low nibble of byte j, j+16 in the high. */
    Q4_0(32, 18, 2);

    private final int blockSize;
    private final int blockBytes;
    private final int ggmlType;

    DType(int blockSize, int blockBytes, int ggmlType) {
        this.blockSize = blockSize;
        this.blockBytes = blockBytes;
        this.ggmlType = ggmlType;
    }

    public int blockSize() { return blockSize; }

    public int blockBytes() { return blockBytes; }

    /** The type id GGUF files use (ggml_type). */
    public int ggmlType() { return ggmlType; }

    public boolean isQuantized() { return blockSize > 1; }

    /** Bytes needed for {@code elements} values; elements must be a multiple of the block size. */
    public long bytesFor(long elements) {
        if (elements % blockSize != 0) {
            throw new IllegalArgumentException(this + " needs a multiple of " + blockSize + " elements, got " + elements);
        }
        return elements / blockSize * blockBytes;
    }

    public static DType fromGgml(int type) {
        for (DType t : values()) {
            if (t.ggmlType == type) return t;
        }
        return null;
    }
}
