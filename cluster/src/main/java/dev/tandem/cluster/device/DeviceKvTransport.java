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
 * the same GPU. One channel per token worker; a channel whose path failed is replaced (a new communicator) at the
 * next hand-over.
 */
public final class DeviceKvTransport implements KvTransport {
    private final CudaBackend backend;
    private final DeviceKvHub hub;
    private final Map<String, DeviceChannel> channels = new ConcurrentHashMap<>();
    private final KvTransferStats stats = new KvTransferStats();

    /** @param backend the prompt worker's backend, whose cache the hand-overs send from */
    public DeviceKvTransport(CudaBackend backend, DeviceKvHub hub) {
        this.backend = backend;
        this.hub = hub;
    }

    /** Sets up the path to {@code address} now (an NCCL communicator takes a moment) rather than at the first hand-over. */
    public void connect(String address, KvStorage source) { channel(address, blockBytes(source)); }

    @Override
    public KvStream open(String address, long reservation, KvStorage source, long deadlineNanos) {
        return channel(address, blockBytes(source)).stream(reservation, source, deadlineNanos);
    }

    private long blockBytes(KvStorage source) {
        try {
            return backend.kvBlockBytes(source);
        } catch (ClassCastException e) {
            throw new IllegalArgumentException("the device KV transport sends from a KV cache on cuda:" + backend.ordinal() + ", not from "
                    + source.getClass().getSimpleName());
        }
    }

    private DeviceChannel channel(String address, long blockBytes) {
        return channels.compute(address, (a, old) -> {
            if (old != null && old.usable()) return old;
            if (old != null) old.close();
            return new DeviceChannel(a, backend, hub.connect(backend, a, blockBytes), stats);
        });
    }

    @Override
    public KvTransferStats stats() { return stats; }

    /** Closes every channel and waits (a few seconds at most) for their queued messages and paths to finish. */
    @Override
    public void close() {
        channels.values().forEach(DeviceChannel::close);
        for (DeviceChannel c : channels.values()) {
            try {
                c.join(10_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        channels.clear();
    }
}
