package dev.tandem.engine.transport;

/**
 * Carries KV caches from prompt workers to token workers, layer by layer (Splitwise's KV transfer). In-process
 * and TCP transports are here; a device transport (NCCL between GPUs) implements the same interface.
 */
public interface KvTransport extends AutoCloseable {
    /**
     * Opens the hand-over of one sequence to reservation {@code reservation} of the receiver at {@code address};
     * everything must be sent before {@code deadlineNanos} ({@link System#nanoTime()}), else the stream fails.
     */
    KvStream open(String address, long reservation, HostKv source, long deadlineNanos);

    KvTransferStats stats();

    @Override
    void close();
}
