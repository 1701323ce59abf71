package dev.tandem.core.quant;

/**
 * fp16 conversions rounded toward -infinity and +infinity (CUDA's __float2half_rd / __float2half_ru): the
 * quantizer stores a group's min rounded down and its scale rounded up, so that the stored range still covers
 * every element of the group.
 */
final class Fp16Rounding {
    private Fp16Rounding() {}

    /** The largest fp16 value <= v, as fp16 bits. */
    static short down(float v) {
        short h = Float.floatToFloat16(v);
        return Float.float16ToFloat(h) > v ? step(h, false) : h;
    }

    /** The smallest fp16 value >= v, as fp16 bits. */
    static short up(float v) {
        short h = Float.floatToFloat16(v);
        return Float.float16ToFloat(h) < v ? step(h, true) : h;
    }

    /** The next fp16 value above (up) or below h (sign-magnitude bits: a magnitude step away from or toward zero). */
    private static short step(short h, boolean up) {
        int bits = h & 0xffff;
        boolean negative = (bits & 0x8000) != 0, zero = (bits & 0x7fff) == 0;
        if (zero) return (short) (up ? 0x0001 : 0x8001);
        return (short) (negative == up ? bits - 1 : bits + 1);
    }
}
