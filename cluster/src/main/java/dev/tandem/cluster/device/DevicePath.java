package dev.tandem.cluster.device;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeoutException;

/**
 * How a gathered layer gets from a prompt worker's device to a token worker's reserved blocks: a device copy when
 * both caches are on one GPU ({@link CopyPath}), NCCL between two GPUs ({@link NcclPath}). Called from the
 * sending channel's thread, in order; after a failure the path is broken for good and the channel is replaced.
 */
interface DevicePath extends AutoCloseable {
    /** The stream on the sender's device that gathers and sends, in message order. */
    MemorySegment sendStream();

    /**
     * Carries {@code bytes} of staging ({@code n} blocks of {@code layer} starting at the sequence's block
     * {@code firstIndex}, gathered on the send stream) to reservation {@code reservation}. May return before they
     * arrived; {@link #drain} waits for everything sent.
     */
    void layer(long reservation, int layer, int firstIndex, int n, long staging, long bytes, long deadlineNanos) throws TimeoutException;

    /** Waits until everything sent so far has left the sender's memory (its blocks may be reused). */
    void drain(long deadlineNanos) throws TimeoutException;

    /** After every layer: the receiver adopts the sequence (in order after its blocks). */
    void commit(long reservation, int[] tokens);

    void abort(long reservation, String reason);

    /** Breaks the path (a deadline passed, a call failed): stuck transfers are ended, later calls fail at once. */
    void fail(String reason);

    boolean healthy();

    @Override
    void close();
}
