package dev.tandem.engine.transport;

import dev.tandem.core.backend.KvStorage;

/**
 * Carries KV caches from prompt workers to token workers, layer by layer (Splitwise's KV transfer). In-process
 * and TCP transports (caches in host memory) are here; the device transport (NCCL between GPUs, caches in device
 * memory) implements the same interface in the cluster module.
 */
public interface KvTransport extends AutoCloseable {
    /**
     * Opens the hand-over of one sequence to reservation {@code reservation} of the receiver at {@code address};
     * everything must be sent before {@code deadlineNanos} ({@link System#nanoTime()}), else the stream fails.
     * {@code source} is the prompt worker's cache; a transport refuses one in memory it cannot send from.
     */
    KvStream open(String address, long reservation, KvStorage source, long deadlineNanos);

    KvTransferStats stats();

    @Override
    void close();
}
