package dev.tandem.core.format.gguf;

/**
 * A tokenizer as GGUF stores it (tokenizer.ggml.*): "llama" (SentencePiece: pieces, scores, types) or
 * "gpt2" (byte-level BPE: tokens in byte-to-unicode form, types, merges, pre-tokenizer name).
 */
public record GgufVocab(String model, String[] tokens, float[] scores, int[] types, String[] merges, String pre,
                        int bos, int eos, boolean addBos) {
}
