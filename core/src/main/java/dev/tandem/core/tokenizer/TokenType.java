package dev.tandem.core.tokenizer;

/** SentencePiece / GGUF token types (the numeric codes are those of sentencepiece_model.proto and GGUF). */
public enum TokenType {
    NORMAL(1), UNKNOWN(2), CONTROL(3), USER_DEFINED(4), UNUSED(5), BYTE(6);

    public final int code;

    TokenType(int code) { this.code = code; }

    /** The type for a numeric code, or null when the code is not one of the six. */
    public static TokenType ofCode(int code) {
        return code >= 1 && code <= 6 ? values()[code - 1] : null;
    }
}
