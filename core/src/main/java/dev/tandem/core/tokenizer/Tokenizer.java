package dev.tandem.core.tokenizer;

/**
 * Text to token ids and back. Implementations: SentencePiece-style BPE with byte fallback and byte-level BPE
 * (tokenizer.json). Decoding goes through {@link #tokenBytes(int, int)} so that a {@link StreamDecoder} can hold
 * back an incomplete UTF-8 character.
 */
public interface Tokenizer {
    int vocabSize();

    /** Beginning-of-sequence id, or -1 when the vocabulary has none. */
    int bos();

    /** End-of-sequence id, or -1 when the vocabulary has none. */
    int eos();

    /**
     * Encodes text. With {@code addSpecial}, adds what the model's own tokenizer adds (BOS for Llama models),
     * exactly as the reference implementation does.
     */
    int[] encode(String text, boolean addSpecial);

    /**
     * The bytes token {@code id} contributes to the text when it follows {@code previous} (-1 at the start):
     * SentencePiece drops the leading space of the first piece after BOS. Special tokens decode to nothing.
     */
    byte[] tokenBytes(int previous, int id);

    /** The token's piece as stored in the vocabulary, for display (`tandem tokenize`). */
    String piece(int id);

    /** Whether the id is a control / special token (BOS, EOS, added special tokens). */
    boolean isSpecial(int id);

    /** Decodes a whole sequence; invalid UTF-8 becomes U+FFFD. */
    default String decode(int[] ids) {
        StreamDecoder d = new StreamDecoder(this);
        StringBuilder sb = new StringBuilder();
        for (int id : ids) sb.append(d.next(id));
        sb.append(d.flush());
        return sb.toString();
    }
}
