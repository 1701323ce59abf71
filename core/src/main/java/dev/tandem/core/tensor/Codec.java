package dev.tandem.core.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Scalar encode / decode of every {@link DType} in its file layout (little-endian, GGUF block layouts).
 * The plain reference that vectorised kernels are tested against, and the quantizer `tandem convert` uses.
 */
public final class Codec {
    private Codec() {}

    public static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Decodes {@code n} values starting at element {@code first} (block-aligned for block formats). */
    public static void decode(DType type, MemorySegment src, long first, float[] dst, int dstOff, int n) {
        switch (type) {
            case F32 -> MemorySegment.copy(src, F32, first * 4, dst, dstOff, n);
            case F16 -> {
                for (int i = 0; i < n; i++) dst[dstOff + i] = Halfs.f16ToFloat(src.get(I16, (first + i) * 2));
            }
            case BF16 -> {
                for (int i = 0; i < n; i++) dst[dstOff + i] = Halfs.bf16ToFloat(src.get(I16, (first + i) * 2));
            }
            case Q8_0 -> {
                checkBlocks(type, first, n);
                for (int b = 0; b < n / 32; b++) {
                    long off = (first / 32 + b) * 34;
                    float d = Halfs.f16ToFloat(src.get(I16, off));
                    for (int j = 0; j < 32; j++) dst[dstOff + b * 32 + j] = d * src.get(ValueLayout.JAVA_BYTE, off + 2 + j);
                }
            }
            case Q4_0 -> {
                checkBlocks(type, first, n);
                for (int b = 0; b < n / 32; b++) {
                    long off = (first / 32 + b) * 18;
                    float d = Halfs.f16ToFloat(src.get(I16, off));
                    for (int j = 0; j < 16; j++) {
                        int q = src.get(ValueLayout.JAVA_BYTE, off + 2 + j) & 0xff;
                        dst[dstOff + b * 32 + j] = d * ((q & 0x0f) - 8);
                        dst[dstOff + b * 32 + j + 16] = d * ((q >>> 4) - 8);
                    }
                }
            }
        }
    }

    /** Encodes {@code n} values into {@code dst} at byte offset {@code dstByte}; returns the bytes written. */
    public static long encode(DType type, float[] src, int srcOff, int n, MemorySegment dst, long dstByte) {
        switch (type) {
            case F32 -> MemorySegment.copy(src, srcOff, dst, F32, dstByte, n);
            case F16 -> {
                for (int i = 0; i < n; i++) dst.set(I16, dstByte + 2L * i, Halfs.floatToF16(src[srcOff + i]));
            }
            case BF16 -> {
                for (int i = 0; i < n; i++) dst.set(I16, dstByte + 2L * i, Halfs.floatToBf16(src[srcOff + i]));
            }
            case Q8_0 -> {
                checkBlocks(type, 0, n);
                for (int b = 0; b < n / 32; b++) {
                    int base = srcOff + b * 32;
                    float amax = 0;
                    for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(src[base + j]));
                    float d = amax / 127f;
                    float id = d != 0 ? 1f / d : 0f;
                    long off = dstByte + b * 34L;
                    dst.set(I16, off, Halfs.floatToF16(d));
                    for (int j = 0; j < 32; j++) dst.set(ValueLayout.JAVA_BYTE, off + 2 + j, (byte) Math.round(src[base + j] * id));
                }
            }
            case Q4_0 -> {
                checkBlocks(type, 0, n);
                for (int b = 0; b < n / 32; b++) {
                    int base = srcOff + b * 32;
                    // Signed value of largest magnitude maps to -8, as ggml's reference quantizer does.
                    float max = 0, amax = 0;
                    for (int j = 0; j < 32; j++) {
                        float v = src[base + j];
                        if (Math.abs(v) > amax) { amax = Math.abs(v); max = v; }
                    }
                    float d = max / -8f;
                    float id = d != 0 ? 1f / d : 0f;
                    long off = dstByte + b * 18L;
                    dst.set(I16, off, Halfs.floatToF16(d));
                    for (int j = 0; j < 16; j++) {
                        int lo = Math.min(15, (int) (src[base + j] * id + 8.5f));
                        int hi = Math.min(15, (int) (src[base + j + 16] * id + 8.5f));
                        dst.set(ValueLayout.JAVA_BYTE, off + 2 + j, (byte) (lo | (hi << 4)));
                    }
                }
            }
        }
        return type.bytesFor(n);
    }

    private static void checkBlocks(DType type, long first, int n) {
        if (first % type.blockSize() != 0 || n % type.blockSize() != 0) {
            throw new IllegalArgumentException(type + " works on whole blocks of " + type.blockSize() + " values");
        }
    }
}
