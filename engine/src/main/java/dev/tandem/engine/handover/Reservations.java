package dev.tandem.engine.handover;

import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.cpu.CpuKvStorage;
import dev.tandem.engine.sched.Sequence;
import dev.tandem.engine.transport.HostKv;
import dev.tandem.engine.transport.KvReceiver;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * A token worker's sequences that wait for their KV: blocks are reserved before the prompt worker starts, the
 * transport writes each layer's blocks into them, and the commit (or the router's order to recompute) releases
 * the sequence to the engine loop exactly once. A reservation that hears nothing by its deadline is dropped.
 */
public final class Reservations implements KvReceiver {
    /** What the engine loop does with a reservation that stopped waiting. */
    public sealed interface Outcome {
        Sequence seq();
    }

    /** Join the decode batch with {@code tokens}; their KV is all here unless {@code recompute}. */
    public record Adopt(Sequence seq, int[] tokens, boolean recompute) implements Outcome {}

    /** Free the blocks; the reservation ended without a hand-over. */
    public record Drop(Sequence seq, String reason, boolean cancelled) implements Outcome {}

    private final class Entry {
        final Sequence seq;
        final long deadline;
        final ReentrantLock lock = new ReentrantLock();
        boolean open = true;

        Entry(Sequence seq, long deadline) {
            this.seq = seq;
            this.deadline = deadline;
        }
    }

    private final Map<Long, Entry> entries = new ConcurrentHashMap<>();
    private final KvLayout layout;
    /** The cache block by block when it is in host memory; null for a device cache (device transports only). */
    private final HostKv kv;
    private final Consumer<Outcome> outcomes;
    private final AtomicLong bytesReceived = new AtomicLong();

    /** @param outcomes called once per reservation, from any thread; hands the outcome to the engine loop */
    public Reservations(KvStorage cache, Consumer<Outcome> outcomes) {
        this.layout = cache.layout();
        this.kv = cache instanceof CpuKvStorage ? HostKv.of(cache) : null;
        this.outcomes = outcomes;
    }

    public void add(Sequence seq, long deadlineNanos) { entries.put(seq.id(), new Entry(seq, deadlineNanos)); }

    public int size() { return entries.size(); }

    public long bytesReceived() { return bytesReceived.get(); }

    @Override
    public long blockBytes() { return host().blockBytes(); }

    private HostKv host() {
        if (kv == null) throw new IllegalStateException("this worker's KV cache is in device memory: hand-overs to it need a device transport (NCCL)");
        return kv;
    }

    @Override
    public boolean write(long reservation, int layer, int index, BlockWriter writer) throws IOException {
        HostKv host = host();
        return writeBlocks(reservation, layer, index, 1, 2 * host.blockBytes(), blocks -> writer.write(host.keys(layer, blocks[0]), host.values(layer, blocks[0])));
    }

    @Override
    public boolean writeBlocks(long reservation, int layer, int firstIndex, int count, long bytes, BlocksWriter writer) throws IOException {
        Entry e = entries.get(reservation);
        if (e == null) return false;
        e.lock.lock();
        try {
            if (!e.open) return false;
            if (firstIndex < 0 || count < 1 || firstIndex + count > e.seq.numBlocks() || layer < 0 || layer >= layout.layers()) {
                throw new IOException("KV blocks " + firstIndex + ".." + (firstIndex + count - 1) + " of layer " + layer + " are outside reservation "
                        + reservation + " (" + e.seq.numBlocks() + " blocks, " + layout.layers() + " layers)");
            }
            int[] blocks = new int[count];
            for (int i = 0; i < count; i++) blocks[i] = e.seq.block(firstIndex + i);
            writer.write(blocks);
            bytesReceived.addAndGet(bytes);
            return true;
        } finally {
            e.lock.unlock();
        }
    }


    @Override
    public void commit(long reservation, int[] tokens) {
        Entry e = close(reservation);
        if (e == null) throw new IllegalStateException("reservation " + reservation + " no longer waits for its KV");
        outcomes.accept(new Adopt(e.seq, tokens, false));
    }

    /** The router's fallback when the transfer failed: the token worker computes the KV itself. */
    public void recompute(long reservation, int[] tokens) {
        Entry e = close(reservation);
        if (e == null) throw new IllegalStateException("reservation " + reservation + " no longer waits for its KV");
        outcomes.accept(new Adopt(e.seq, tokens, true));
    }

    @Override
    public void abort(long reservation, String reason) {
        Entry e = close(reservation);
        if (e != null) outcomes.accept(new Drop(e.seq, reason, true));
    }

    /** Drops reservations past their deadline. */
    public void expire(long now) {
        for (Entry e : List.copyOf(entries.values())) {
            if (now - e.deadline > 0 && close(e.seq.id()) != null) {
                outcomes.accept(new Drop(e.seq, "no KV hand-over arrived for reservation " + e.seq.id() + " before its deadline", false));
            }
        }
    }

    /** Closes every reservation (the engine stops); returns their sequences. */
    public List<Sequence> closeAll() {
        List<Sequence> out = new ArrayList<>();
        for (Long id : List.copyOf(entries.keySet())) {
            Entry e = close(id);
            if (e != null) out.add(e.seq);
        }
        return out;
    }

    /** Ends the wait once: after this no write lands in the blocks, which then belong to the engine loop. */
    private Entry close(long reservation) {
        Entry e = entries.remove(reservation);
        if (e == null) return null;
        e.lock.lock();
        try {
            e.open = false;
        } finally {
            e.lock.unlock();
        }
        return e;
    }
}
