package dev.tandem.cluster.device;

import dev.tandem.core.backend.KvStorage;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.engine.transport.KvReceiver;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Where device transports find token workers whose KV caches are on GPUs. Those of this JVM are registered by
 * address and reached by a device copy (same GPU) or an NCCL communicator (another GPU) whose unique id is handed
 * over directly; any other address is a token worker process's KV port ({@link DeviceKvServer}), reached over NCCL
 * with the unique id sent on a connection to that port.
 */
public final class DeviceKvHub {
    private final Map<String, ReceivingEnd> ends = new ConcurrentHashMap<>();
    private final Duration setupTimeout;
    private volatile long stallNanos;

    public DeviceKvHub() { this(Duration.ofSeconds(120)); }

    /** @param setupTimeout longest wait for an NCCL communicator to form (both ranks join, first connection) */
    public DeviceKvHub(Duration setupTimeout) { this.setupTimeout = setupTimeout; }

    /** Makes the token worker with {@code cache} and {@code receiver} on {@code backend} reachable as {@code address}. */
    public void register(String address, CudaBackend backend, KvStorage cache, KvReceiver receiver) {
        ends.put(address, new ReceivingEnd(address, backend, cache, receiver));
    }

    public void unregister(String address) { ends.remove(address); }

    /** A path from {@code sender}'s GPU to {@code address}, for caches whose blocks have {@code blockBytes} per layer's keys. */
    DevicePath connect(CudaBackend sender, String address, long blockBytes) {
        ReceivingEnd end = ends.get(address);
        // Not in this process: a token worker process's KV port (HOST:PORT), NCCL set up over a connection to it.
        if (end == null) return RemoteNccl.connect(sender, address, blockBytes, setupTimeout);
        long theirs = end.backend().kvBlockBytes(end.kv());
        if (theirs != blockBytes) {
            throw new IllegalArgumentException("KV block of " + blockBytes + " bytes on cuda:" + sender.ordinal() + ", receiver '" + address
                    + "' on cuda:" + end.backend().ordinal() + " has " + theirs + " (same model and --precision on both?)");
        }
        return sender.ordinal() == end.backend().ordinal() ? new CopyPath(sender, end, this) : NcclPath.local(sender, end, this, setupTimeout);
    }

    /**
     * Fault injection (tests, and trying deadlines by hand): every layer's delivery first waits {@code delay}, as a
     * token worker that stopped taking KV would; zero turns it off.
     */
    public void stallDeliveries(Duration delay) { stallNanos = delay.toNanos(); }

    void stall() {
        long n = stallNanos;
        if (n <= 0) return;
        try {
            Thread.sleep(Duration.ofNanos(n));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
