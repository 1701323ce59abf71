package dev.tandem.bench;

/** A problem the user can fix (bad option, bad trace, unreachable endpoint): printed as one line, no stack trace. */
public class BenchException extends RuntimeException {
    public BenchException(String message) {
        super(message);
    }

    public BenchException(String message, Throwable cause) {
        super(message, cause);
    }
}
