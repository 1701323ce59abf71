package dev.tandem.engine.transport;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * The receiving end of hand-overs (a token worker): KV blocks land in the blocks reserved for the sequence, then
 * the commit, in the order sent. Implementations are thread-safe; transports call them from their own threads.
 */
public interface KvReceiver {
    /** Bytes of one block of one layer's keys; a sender with another shape is refused. */
    long blockBytes();

    /**
     * Gives {@code writer} the destination slices of block {@code index} (position order within the sequence) of
     * {@code layer}, unless the reservation no longer waits for KV (cancelled, adopted, expired): then false and
     * the writer is not called. No commit or cancellation overtakes a write in progress.
     */
    boolean write(long reservation, int layer, int index, BlockWriter writer) throws IOException;

    /**
     * A device transport's write: gives {@code writer} the physical ids (in the receiver's cache) of blocks
     * {@code firstIndex} .. {@code firstIndex + count - 1} of the reservation, under the rules of {@link #write};
     * the writer fills them (on the device) before it returns, {@code bytes} in all.
     */
    boolean writeBlocks(long reservation, int layer, int firstIndex, int count, long bytes, BlocksWriter writer) throws IOException;

    /** Every block was sent: {@code tokens} (prompt and first token) join the decode batch. */
    void commit(long reservation, int[] tokens);

    /** The sender gave up (its request finished or failed); the reservation is dropped. */
    void abort(long reservation, String reason);

    @FunctionalInterface
    interface BlocksWriter {
        void write(int[] blocks) throws IOException;
    }

    @FunctionalInterface
    interface BlockWriter {
        void write(MemorySegment keys, MemorySegment values) throws IOException;
    }
}
