package dev.tandem.engine.handover;

/** A token worker's blocks held for a sequence whose prompt runs elsewhere. */
public interface Reservation {
    long id();

    /** The transfer failed: compute the KV of {@code tokens} (prompt and tokens sent so far) here, then decode. */
    void recompute(int[] tokens);

    /** Frees the blocks; no hand-over will come. */
    void cancel();
}
