package dev.tandem.core.quant;

/**
 * Chooses a GQ4 group's (min, scale) for less squared rounding error than min / max, within FlexGen's format
 * (asymmetric, 16 levels, fp16 parameters; the same kernels decompress it). Min / max spends levels on the
 * group's extremes, which 4 bits can ill afford; a narrower range clips a few outliers and rounds the many values
 * finer.
 *
 * <p>Two searches, both in f32 arithmetic whose every operation the CUDA quantize kernel repeats, so that both
 * give the same bytes:
 * <ul>
 *   <li>{@link #refine}: from the min / max parameters, alternating least squares while the error falls, at most
 *       {@link #KV_REFITS} times: given the codes, the least-squares scale and offset (rounded to fp16); given those,
 *       the codes again. A few passes over the group: cheap enough for the KV cache, quantized per token.</li>
 *   <li>{@link #search}: a grid of clipped ranges [min + a (max - min), max - b (max - min)] scored as they are, the
 *       best few and min / max refined as above, the least squared error wins (19% less than min / max on the 25m
 *       model's weights, half the perplexity increase: BENCHMARKS.md); some twenty times min / max's cost, for
 *       weights, quantized once.</li>
 * </ul>
 * Both return the min / max parameters unless something has strictly less error.
 */
final class Gq4RangeSearch {
    private Gq4RangeSearch() {}

    /** Shrink fractions tried at either end of the range for weights (both 0: min / max); a finer grid gains < 0.2%. */
    private static final float[] SHRINK = {0f, 0.04f, 0.08f, 0.12f, 0.16f, 0.2f, 0.25f};
    /** Grid starts refined (the best by their unrefined error): refining all 48 gains 0.1% and costs 7x. */
    private static final int TOP = 6;
    /** Most refits of a KV group (the CUDA kernel's constant too). */
    static final int KV_REFITS = 4;
    /** Most refits from each start of the weight grid. */
    private static final int WEIGHT_REFITS = 8;

    /** (min, scale) as fp16 bits: min in the low 16 bits, scale in the high 16. */
    static int pack(short min16, short scale16) { return (min16 & 0xffff) | (scale16 & 0xffff) << 16; }

    static short min16(int params) { return (short) params; }

    static short scale16(int params) { return (short) (params >>> 16); }

    /** The weights' search over clipped ranges of g[0..n), whose min / max are lo, hi and min / max parameters {@code minMax}. */
    static int search(float[] g, int n, float lo, float hi, int minMax) {
        int best = refine(g, n, minMax, WEIGHT_REFITS);
        float bestErr = error(g, n, best), span = hi - lo;
        if (span == 0f || bestErr == 0f) return best;
        // Every start scored as it is (one pass each), the best few refined.
        int[] top = new int[TOP];
        float[] topErr = new float[TOP];
        java.util.Arrays.fill(topErr, Float.POSITIVE_INFINITY);
        for (float a : SHRINK) {
            for (float b : SHRINK) {
                if (a == 0f && b == 0f) continue;
                float mn = lo + a * span, sc = (hi - b * span - mn) / Gq4Layout.LEVELS;
                int p = pack(Float.floatToFloat16(mn), Float.floatToFloat16(sc));
                float err = error(g, n, p);
                int at = TOP;
                while (at > 0 && err < topErr[at - 1]) at--;
                if (at == TOP) continue;
                System.arraycopy(top, at, top, at + 1, TOP - 1 - at);
                System.arraycopy(topErr, at, topErr, at + 1, TOP - 1 - at);
                top[at] = p;
                topErr[at] = err;
            }
        }
        for (int t = 0; t < TOP && topErr[t] < Float.POSITIVE_INFINITY; t++) {
            int p = refine(g, n, top[t], WEIGHT_REFITS);
            float err = error(g, n, p);
            if (err < bestErr) {
                bestErr = err;
                best = p;
            }
        }
        return best;
    }
    /** From {@code params}, up to {@code steps} least-squares refits of g[0..n) while the squared error falls. */
    static int refine(float[] g, int n, int params, int steps) {
        float err = error(g, n, params);
        for (int it = 0; it < steps && err > 0f; it++) {
            int fit = refit(g, n, params);
            if (fit == 0) break;
            float e = error(g, n, fit);
            if (!(e < err)) break;
            err = e;
            params = fit;
        }
        return params;
    }

    /** The least-squares (min, scale) of g given its codes under {@code params}, as fp16; 0 where there is none. */
    private static int refit(float[] g, int n, int params) {
        float mn = Float.float16ToFloat(min16(params)), sc = Float.float16ToFloat(scale16(params));
        float sq = 0f, sx = 0f;
        for (int j = 0; j < n; j++) {
            sq += Gq4Quantizer.quant(g[j], mn, sc);
            sx += g[j];
        }
        float mq = sq / n, mx = sx / n, cov = 0f, var = 0f;
        for (int j = 0; j < n; j++) {
            float dq = Gq4Quantizer.quant(g[j], mn, sc) - mq;
            cov += dq * (g[j] - mx);
            var += dq * dq;
        }
        if (!(var > 0f) || !(cov > 0f)) return 0;
        float s = cov / var, m = mx - s * mq;
        short s16 = Float.floatToFloat16(s), m16 = Float.floatToFloat16(m);
        float s2 = Float.float16ToFloat(s16), m2 = Float.float16ToFloat(m16);
        if (!(s2 > 0f) || Float.isInfinite(s2) || Float.isInfinite(m2)) return 0;
        return pack(m16, s16);
    }

    /** Squared error of g[0..n) through GQ4 with {@code params}, summed in f32 in index order. */
    static float error(float[] g, int n, int params) {
        float mn = Float.float16ToFloat(min16(params)), sc = Float.float16ToFloat(scale16(params)), err = 0f;
        for (int j = 0; j < n; j++) {
            float d = Math.fma(Gq4Quantizer.quant(g[j], mn, sc), sc, mn) - g[j];
            err += d * d;
        }
        return err;
    }
}
