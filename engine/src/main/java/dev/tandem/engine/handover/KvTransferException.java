package dev.tandem.engine.handover;

/** A hand-over failed (transfer error, deadline, receiver gone); the router recomputes on the token side. */
public final class KvTransferException extends RuntimeException {
    public KvTransferException(String message, Throwable cause) { super(message, cause); }
}
