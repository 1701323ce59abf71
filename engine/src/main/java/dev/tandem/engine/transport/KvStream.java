package dev.tandem.engine.transport;

import java.util.function.Consumer;

/**
 * One sequence's hand-over, seen by the prompt worker. Calls return at once: the transport sends in the
 * background, in call order, so the engine keeps computing while earlier layers travel.
 */
public interface KvStream {
    /** Sends blocks {@code blocks} (physical ids in the sender's cache) of {@code layer}, the first being the sequence's block {@code firstIndex}. */
    void sendLayer(int layer, int[] blocks, int firstIndex);

    /**
     * After every layer: hands the sequence over. {@code done} gets null once everything left this worker (its
     * blocks may then be reused), or the failure (deadline passed, connection lost, receiver gone).
     */
    void commit(int[] tokens, Consumer<Throwable> done);

    /** Drops the hand-over (the request finished on the prompt worker, or was cancelled). */
    void abort(String reason);
}
