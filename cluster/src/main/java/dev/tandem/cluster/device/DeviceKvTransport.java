package dev.tandem.cluster.device;

import dev.tandem.core.backend.KvStorage;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.engine.transport.KvStream;
import dev.tandem.engine.transport.KvTransferStats;
import dev.tandem.engine.transport.KvTransport;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A prompt worker's {@link KvTransport} when its KV cache is on a GPU: each layer's blocks leave the cache as soon
 * as the forward pass queued their write, over NCCL to a token worker on another GPU, or by a device copy to one on
 * the same GPU. One channel per token worker, made by {@link #connect} where the cluster sets its paths up front
 * (EmbeddedCluster), else by the first hand-over to that worker (on the caller's thread). A channel whose path failed
 * is replaced by a new one (a new communicator) on a thread of its own: {@link #open} runs on the caller's thread (the
 * router's, placing requests), which must not wait seconds for NCCL; until the new path is up, hand-overs to that
 * worker are refused at once and the router places them again.
 */
public final class DeviceKvTransport implements KvTransport {
    private final CudaBackend backend;
    private final DeviceKvHub hub;
    private final Map<String, DeviceChannel> channels = new ConcurrentHashMap<>();
    /** Paths being rebuilt after a failure, by address. */
    private final Map<String, Thread> rebuilding = new ConcurrentHashMap<>();
    private final KvTransferStats stats = new KvTransferStats();
    private final java.util.concurrent.atomic.AtomicLong pathsRebuilt = new java.util.concurrent.atomic.AtomicLong();
    private volatile boolean closed;

    /** @param backend the prompt worker's backend, whose cache the hand-overs send from */
    public DeviceKvTransport(CudaBackend backend, DeviceKvHub hub) {
        this.backend = backend;
        this.hub = hub;
    }

    /** Sets up the path to {@code address} now (an NCCL communicator takes a moment) rather than at the first hand-over. */
    public void connect(String address, KvStorage source) { channel(address, blockBytes(source)); }

    @Override
    public KvStream open(String address, long reservation, KvStorage source, long deadlineNanos) {
        long blockBytes = blockBytes(source);
        DeviceChannel c = channel(address, blockBytes);
        if (!c.usable()) {
            rebuild(address, c, blockBytes);
            throw new IllegalStateException("the device KV path to " + address + " failed and is being rebuilt; the hand-over is refused "
                    + "until it is up");
        }
        return c.stream(reservation, source, deadlineNanos);
    }

    /** Replaces a failed channel on a thread of its own (once at a time per address). */
    private void rebuild(String address, DeviceChannel failed, long blockBytes) {
        if (channels.get(address) != failed) return; // replaced already
        Thread t = Thread.ofPlatform().daemon().name("tandem-kv-path-rebuild-" + address).unstarted(() -> {
            try {
                if (closed || channels.get(address) != failed) return; // another rebuild got there first
                failed.close();
                if (closed) return;
                DeviceChannel fresh = new DeviceChannel(address, backend, hub.connect(backend, address, blockBytes), stats);
                if (!channels.replace(address, failed, fresh) || closed) {
                    fresh.close();
                } else {
                    pathsRebuilt.incrementAndGet();
                }
            } catch (RuntimeException e) {
                java.util.logging.Logger.getLogger(DeviceKvTransport.class.getName()).warning("rebuilding the device KV path to " + address
                        + " failed (the next hand-over tries again): " + e.getMessage());
            } finally {
                rebuilding.remove(address, Thread.currentThread());
            }
        });
        if (rebuilding.putIfAbsent(address, t) == null) t.start();
    }

    private long blockBytes(KvStorage source) {
        try {
            return backend.kvBlockBytes(source);
        } catch (ClassCastException e) {
            throw new IllegalArgumentException("the device KV transport sends from a KV cache on cuda:" + backend.ordinal() + ", not from "
                    + source.getClass().getSimpleName());
        }
    }

    /** The channel to {@code address}, made on first use (a failed one stays until {@link #rebuild} replaces it). */
    private DeviceChannel channel(String address, long blockBytes) {
        return channels.computeIfAbsent(address, a -> new DeviceChannel(a, backend, hub.connect(backend, a, blockBytes), stats));
    }

    @Override
    public KvTransferStats stats() { return stats; }

    /** Failed paths replaced by new ones so far. */
    public long pathsRebuilt() { return pathsRebuilt.get(); }

    /** Closes every channel and waits (a few seconds at most) for their queued messages and paths to finish. */
    @Override
    public void close() {
        closed = true;
        awaitEach(rebuilding.values(), t -> t.join(10_000));
        channels.values().forEach(DeviceChannel::close);
        awaitEach(channels.values(), c -> c.join(10_000));
        channels.clear();
    }

    private interface Wait<T> {
        void on(T item) throws InterruptedException;
    }

    /** Waits on each in turn; an interrupt stops the waiting (and stays set). */
    private static <T> void awaitEach(Iterable<T> items, Wait<T> wait) {
        try {
            for (T item : items) wait.on(item);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
