package dev.tandem.server.api;

/** A request the API refuses (HTTP 400): {@code param} names the offending field, or is null. */
public final class InvalidRequestException extends RuntimeException {
    private final String param;

    public InvalidRequestException(String param, String message) {
        super(message);
        this.param = param;
    }

    public String param() { return param; }
}
