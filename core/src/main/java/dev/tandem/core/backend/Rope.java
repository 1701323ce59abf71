package dev.tandem.core.backend;

/**
 * Rotary position embedding: precomputed cos/sin per position and frequency.
 * INTERLEAVED rotates pairs (2i, 2i+1) (Meta's layout, llama2.c, GGUF "llama"); HALF rotates (i, i + d/2)
 * (Hugging Face's rotate_half layout, GGUF NeoX-style architectures such as Qwen2).
 */
public final class Rope {
    public enum Style { INTERLEAVED, HALF }

    private final int headDim;
    private final Style style;
    private final int maxPositions;
    private final float[] cos;
    private final float[] sin;

    /** invFreq holds headDim / 2 inverse frequencies (after any scaling such as Llama 3's). */
    public Rope(int headDim, Style style, float[] invFreq, int maxPositions) {
        if (headDim % 2 != 0 || invFreq.length != headDim / 2) {
            throw new IllegalArgumentException("RoPE needs an even head_dim and head_dim/2 frequencies");
        }
        this.headDim = headDim;
        this.style = style;
        this.maxPositions = maxPositions;
        int half = headDim / 2;
        cos = new float[maxPositions * half];
        sin = new float[maxPositions * half];
        for (int p = 0; p < maxPositions; p++) {
            for (int i = 0; i < half; i++) {
                // f32 product as in PyTorch, then cos/sin of that value.
                float angle = p * invFreq[i];
                cos[p * half + i] = (float) Math.cos(angle);
                sin[p * half + i] = (float) Math.sin(angle);
            }
        }
    }

    /** The standard inverse frequencies 1 / theta^(2i/d), computed in f32 as PyTorch does. */
    public static float[] invFreq(int headDim, double theta) {
        float[] f = new float[headDim / 2];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) (1.0 / Math.pow(theta, (2.0 * i) / headDim));
        }
        return f;
    }

    /** Llama 3's frequency scaling (rope_scaling.rope_type == "llama3"). */
    public static float[] llama3Scaled(float[] invFreq, double factor, double lowFreqFactor, double highFreqFactor,
                                       double originalMaxPositions) {
        double lowWavelen = originalMaxPositions / lowFreqFactor;
        double highWavelen = originalMaxPositions / highFreqFactor;
        float[] out = new float[invFreq.length];
        for (int i = 0; i < invFreq.length; i++) {
            double f = invFreq[i];
            double wavelen = 2 * Math.PI / f;
            if (wavelen < highWavelen) {
                out[i] = (float) f;
            } else if (wavelen > lowWavelen) {
                out[i] = (float) (f / factor);
            } else {
                double smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                out[i] = (float) ((1 - smooth) * f / factor + smooth * f);
            }
        }
        return out;
    }

    public int headDim() { return headDim; }

    public Style style() { return style; }

    public int maxPositions() { return maxPositions; }

    public float cos(int pos, int i) { return cos[pos * (headDim / 2) + i]; }

    public float sin(int pos, int i) { return sin[pos * (headDim / 2) + i]; }

    /** The table of cos values, [position][headDim/2]. */
    public float[] cosTable() { return cos; }

    public float[] sinTable() { return sin; }

    public void checkPosition(int pos) {
        if (pos < 0 || pos >= maxPositions) {
            throw new IllegalArgumentException("position " + pos + " outside the model's context of " + maxPositions);
        }
    }
}
