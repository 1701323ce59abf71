package dev.tandem.core.model;

import dev.tandem.core.backend.Rope;

/**
 * Hyper-parameters of a Llama-family decoder, whatever file they came from.
 *
 * @param architecture   "llama", "mistral" or "qwen2"
 * @param ropeStyle      how the file's Q/K weights pair dimensions for RoPE
 * @param ropeTheta      RoPE base frequency
 * @param ropeInvFreq    headDim/2 inverse frequencies, already scaled (Llama 3 scaling)
 * @param qkvBias        Qwen2 has biases on the Q, K and V projections
 * @param slidingWindow  Mistral's attention window, 0 for none (windows longer than the context change nothing)
 */
public record ModelConfig(
        String architecture,
        int dim,
        int hiddenDim,
        int layers,
        int heads,
        int kvHeads,
        int headDim,
        int vocabSize,
        int contextLength,
        float normEps,
        Rope.Style ropeStyle,
        double ropeTheta,
        float[] ropeInvFreq,
        boolean tiedEmbeddings,
        boolean qkvBias,
        int slidingWindow,
        int bos,
        int eos) {

    public ModelConfig {
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads " + heads + " is not a multiple of num_key_value_heads " + kvHeads);
        }
        if (ropeInvFreq.length != headDim / 2) {
            throw new IllegalArgumentException("RoPE needs " + headDim / 2 + " frequencies, got " + ropeInvFreq.length);
        }
    }

    public int qDim() { return heads * headDim; }

    public int kvDim() { return kvHeads * headDim; }

    /** Weight parameters (excluding biases and norms), for reports. */
    public long matrixParameters() {
        long perLayer = (long) dim * qDim() + 2L * dim * kvDim() + (long) qDim() * dim + 3L * dim * hiddenDim;
        return perLayer * layers + (long) vocabSize * dim * (tiedEmbeddings ? 1 : 2);
    }

    public Rope rope(int maxPositions) { return new Rope(headDim, ropeStyle, ropeInvFreq, maxPositions); }

    public String describe() {
        return String.format("%s: %d layers, dim %d, ffn %d, heads %d/%d, head_dim %d, vocab %d, context %d",
                architecture, layers, dim, hiddenDim, heads, kvHeads, headDim, vocabSize, contextLength);
    }
}
