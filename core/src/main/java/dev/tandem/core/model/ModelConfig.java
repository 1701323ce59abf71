package dev.tandem.core.model;

import dev.tandem.core.backend.Rope;

/**
 * Hyper-parameters of a decoder, whatever file they came from: the Llama family, or OPT.
 *
 * <p>OPT fits the same record rather than one of its own, so that every consumer (KV layout, schedulers, CLI reports)
 * keeps reading one type: its differences are either fixed by the architecture (LayerNorm with bias, ReLU, biases on
 * every projection, learned positions at offset 2, tied output) or already fields here. Its RoPE fields are unused
 * ({@link #opt} fills them with harmless defaults); {@link #hasRope()} says so.
 *
 * @param architecture   "llama", "mistral", "qwen2" or "opt"
 * @param hiddenDim      the FFN width (Llama's intermediate_size, OPT's ffn_dim)
 * @param contextLength  positions the model takes (OPT: its learned position table has contextLength + 2 rows)
 * @param normEps        RMSNorm's epsilon, or LayerNorm's for OPT
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

    /** The architecture name of OPT (Hugging Face model_type "opt"). */
    public static final String OPT = "opt";

    /** Rows before position 0 in OPT's learned position table (a fairseq padding convention transformers keeps). */
    public static final int OPT_POSITION_OFFSET = 2;

    public ModelConfig {
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads " + heads + " is not a multiple of num_key_value_heads " + kvHeads);
        }
        if (ropeInvFreq.length != headDim / 2) {
            throw new IllegalArgumentException("RoPE needs " + headDim / 2 + " frequencies, got " + ropeInvFreq.length);
        }
    }

    /** OPT: the same shape fields, learned positions, no RoPE (its RoPE fields are placeholders). */
    public static ModelConfig opt(int dim, int ffnDim, int layers, int heads, int vocabSize, int maxPositions, float eps, int bos, int eos) {
        int headDim = dim / heads;
        return new ModelConfig(OPT, dim, ffnDim, layers, heads, heads, headDim, vocabSize, maxPositions, eps, Rope.Style.HALF,
                10_000, Rope.invFreq(headDim, 10_000), true, true, 0, bos, eos);
    }

    public boolean isOpt() { return architecture.equals(OPT); }

    /** Whether attention rotates q and k by position (the Llama family); OPT adds learned position embeddings instead. */
    public boolean hasRope() { return !isOpt(); }

    public int qDim() { return heads * headDim; }

    public int kvDim() { return kvHeads * headDim; }

    /** Weight parameters (excluding biases and norms), for reports. */
    public long matrixParameters() {
        long perLayer = (long) dim * qDim() + 2L * dim * kvDim() + (long) qDim() * dim + (isOpt() ? 2L : 3L) * dim * hiddenDim;
        return perLayer * layers + (long) vocabSize * dim * (tiedEmbeddings ? 1 : 2);
    }

    public Rope rope(int maxPositions) { return new Rope(headDim, ropeStyle, ropeInvFreq, maxPositions); }

    public String describe() {
        return String.format("%s: %d layers, dim %d, ffn %d, heads %d/%d, head_dim %d, vocab %d, context %d",
                architecture, layers, dim, hiddenDim, heads, kvHeads, headDim, vocabSize, contextLength);
    }
}
