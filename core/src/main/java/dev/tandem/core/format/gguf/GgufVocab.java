package dev.tandem.core.format.gguf;

import dev.tandem.core.tokenizer.ByteLevelBpeTokenizer;
import dev.tandem.core.tokenizer.SentencePieceTokenizer;
import dev.tandem.core.tokenizer.TokenType;
import dev.tandem.core.tokenizer.Tokenizer;

import java.util.List;

/**
 * A tokenizer as GGUF stores it (tokenizer.ggml.*): "llama" (SentencePiece: pieces, scores, types) or
 * "gpt2" (byte-level BPE: tokens in byte-to-unicode form, types, merges, pre-tokenizer name).
 */
public record GgufVocab(String model, String[] tokens, float[] scores, int[] types, String[] merges, String pre,
                        int bos, int eos, boolean addBos) {

    /** The GGUF form of a loaded tokenizer. */
    public static GgufVocab of(Tokenizer t) {
        int n = t.vocabSize();
        String[] tokens = new String[n];
        int[] types = new int[n];
        if (t instanceof SentencePieceTokenizer sp) {
            float[] scores = new float[n];
            for (int i = 0; i < n; i++) {
                // GGUF's llama vocabulary writes the SentencePiece space mark, as tokenizer.model does.
                tokens[i] = sp.type(i) == TokenType.BYTE ? sp.piece(i) : sp.piece(i).replace(' ', '\u2581');
                scores[i] = sp.score(i);
                types[i] = sp.type(i).code;
            }
            return new GgufVocab("llama", tokens, scores, types, null, null, sp.bos(), sp.eos(), true);
        }
        if (t instanceof ByteLevelBpeTokenizer bl) {
            for (int i = 0; i < n; i++) {
                tokens[i] = bl.piece(i);
                types[i] = bl.isSpecial(i) ? TokenType.CONTROL.code : TokenType.NORMAL.code;
            }
            List<String> patterns = bl.splitPatterns();
            String pre = patterns.equals(List.of(ByteLevelBpeTokenizer.LLAMA3_REGEX)) ? "llama-bpe"
                    : patterns.isEmpty() || patterns.equals(List.of(ByteLevelBpeTokenizer.GPT2_REGEX)) ? "gpt2" : null;
            if (pre == null) {
                throw new IllegalArgumentException("this tokenizer's pre-tokenizer regex has no GGUF tokenizer.ggml.pre name: " + patterns);
            }
            return new GgufVocab("gpt2", tokens, null, types, bl.mergeStrings(), pre, bl.bos(), bl.eos(), bl.addsBos());
        }
        throw new IllegalArgumentException("no GGUF form for tokenizer " + t.getClass().getSimpleName());
    }

    /** The split regex of a GGUF tokenizer.ggml.pre name. */
    public static String preRegex(String pre) {
        return switch (pre) {
            case "llama-bpe", "llama3", "llama-v3" -> ByteLevelBpeTokenizer.LLAMA3_REGEX;
            case "gpt2", "default" -> ByteLevelBpeTokenizer.GPT2_REGEX;
            default -> throw new dev.tandem.core.format.ModelFormatException("tokenizer.ggml.pre '" + pre
                    + "' is not supported (supported: llama-bpe, gpt2, default)");
        };
    }
}
