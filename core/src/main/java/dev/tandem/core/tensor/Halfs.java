package dev.tandem.core.tensor;

/** Scalar conversions between float and the 16-bit float formats. */
public final class Halfs {
    private Halfs() {}

    public static float f16ToFloat(short h) { return Float.float16ToFloat(h); }

    public static short floatToF16(float f) { return Float.floatToFloat16(f); }

    public static float bf16ToFloat(short b) { return Float.intBitsToFloat((b & 0xffff) << 16); }

    /** Round to nearest even, as PyTorch does. */
    public static short floatToBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) return (short) ((bits >>> 16) | 0x40);
        int rounding = 0x7fff + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }
}
