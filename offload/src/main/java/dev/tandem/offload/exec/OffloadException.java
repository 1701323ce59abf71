package dev.tandem.offload.exec;

/** An offloaded run that cannot go on: a cap exceeded, a policy the model cannot follow, a failed read. */
public final class OffloadException extends RuntimeException {
    public OffloadException(String message) { super(message); }

    public OffloadException(String message, Throwable cause) { super(message, cause); }
}
