package dev.tandem.core.format;

/**
 * A model or tokenizer file that cannot be used as it is. The message names the file, the field or tensor,
 * and what was expected, so a user can act on it without a stack trace.
 */
public class ModelFormatException extends RuntimeException {
    public ModelFormatException(String message) { super(message); }

    public ModelFormatException(String message, Throwable cause) { super(message, cause); }
}
