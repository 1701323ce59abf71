package dev.tandem.engine;

/** A submitted request. Cancelling frees its sequence and KV blocks at the next step boundary. */
public interface RequestHandle {
    long id();

    void cancel();
}
