package dev.tandem.server.generation;

/** The engine failed while running a request (HTTP 500, or an error event on a stream). */
public final class GenerationFailedException extends RuntimeException {
    public GenerationFailedException(Throwable cause) {
        super("generation failed: " + (cause.getMessage() != null ? cause.getMessage() : cause.toString()), cause);
    }
}
