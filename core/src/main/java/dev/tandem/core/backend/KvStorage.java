package dev.tandem.core.backend;

/** A backend's memory for the paged KV cache; block tables and slot mapping live outside, in the caller. */
public interface KvStorage {
    KvLayout layout();
}
