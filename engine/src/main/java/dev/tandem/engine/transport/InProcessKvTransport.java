package dev.tandem.engine.transport;

import dev.tandem.core.backend.KvStorage;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Hand-overs between workers of one JVM: a block is one memory copy from the prompt worker's cache into the token
 * worker's reserved block, made on the channel's sender thread while the prompt worker computes later layers.
 */
public final class InProcessKvTransport implements KvTransport {
    private final Map<String, KvReceiver> receivers = new ConcurrentHashMap<>();
    private final Map<String, KvChannel> channels = new ConcurrentHashMap<>();
    private final KvTransferStats stats = new KvTransferStats();
    /** Fault injection: while set, commits wait (a token worker whose KV stopped arriving after the blocks). */
    private volatile java.util.concurrent.CountDownLatch held;

    /** Makes {@code receiver} reachable as {@code address}. */
    public void register(String address, KvReceiver receiver) { receivers.put(address, receiver); }

    public void unregister(String address) {
        receivers.remove(address);
        KvChannel c = channels.remove(address);
        if (c != null) c.close();
    }

    @Override
    public KvStream open(String address, long reservation, KvStorage cache, long deadlineNanos) {
        HostKv source = HostKv.of(cache); // refuses a device cache, saying why
        KvReceiver receiver = receivers.get(address);
        if (receiver == null) throw new IllegalArgumentException("no KV receiver registered as '" + address + "'");
        if (receiver.blockBytes() != source.blockBytes()) {
            throw new IllegalArgumentException("KV block of " + source.blockBytes() + " bytes, receiver '" + address + "' expects " + receiver.blockBytes());
        }
        return channels.computeIfAbsent(address, a -> new Copying(a, receiver)).stream(reservation, cache, deadlineNanos);
    }

    @Override
    public KvTransferStats stats() { return stats; }

    /**
     * Fault injection (tests): while on, every hand-over's commit waits on the sender thread, at most a minute, so
     * that transfers are stuck after their blocks; turning it off lets the held commits go.
     */
    public void holdCommits(boolean on) {
        if (on) {
            if (held == null) held = new java.util.concurrent.CountDownLatch(1);
        } else {
            java.util.concurrent.CountDownLatch h = held;
            held = null;
            if (h != null) h.countDown();
        }
    }

    @Override
    public void close() {
        channels.values().forEach(KvChannel::close);
        channels.clear();
    }

    private final class Copying extends HostKvChannel {
        private final KvReceiver receiver;

        Copying(String address, KvReceiver receiver) {
            super(address, stats);
            this.receiver = receiver;
        }

        @Override
        protected void block(long reservation, int layer, int index, MemorySegment keys, MemorySegment values) throws IOException {
            receiver.write(reservation, layer, index, (k, v) -> {
                MemorySegment.copy(keys, 0, k, 0, keys.byteSize());
                MemorySegment.copy(values, 0, v, 0, values.byteSize());
            });
        }

        @Override
        protected void commit(long reservation, int[] tokens) throws IOException {
            java.util.concurrent.CountDownLatch h = held;
            if (h != null) {
                try {
                    h.await(60, java.util.concurrent.TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted while a commit was held", e);
                }
            }
            receiver.commit(reservation, tokens);
        }

        @Override
        protected void abort(long reservation, String reason) { receiver.abort(reservation, reason); }
    }
}
