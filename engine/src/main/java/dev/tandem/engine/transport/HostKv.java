package dev.tandem.engine.transport;

import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.cpu.CpuKvStorage;

import java.lang.foreign.MemorySegment;

/**
 * A KV cache in host memory seen block by block: one block of one layer's keys (or values) is a contiguous
 * slice, so a transport sends it from, and writes it into, the cache itself without staging copies.
 */
public final class HostKv {
    private final CpuKvStorage storage;
    private final long blockBytes;

    private HostKv(CpuKvStorage storage) {
        this.storage = storage;
        KvLayout l = storage.layout();
        this.blockBytes = l.blockSize() * storage.slotBytes();
    }

    public static HostKv of(KvStorage kv) {
        if (kv instanceof CpuKvStorage c) return new HostKv(c);
        throw new IllegalArgumentException("KV hand-over over host memory needs the CPU backend's KV storage, not "
                + kv.getClass().getSimpleName() + " (a device transport such as NCCL has to carry it)");
    }

    public KvLayout layout() { return storage.layout(); }

    /** Bytes of one block of one layer's keys (as many again for values). */
    public long blockBytes() { return blockBytes; }

    public MemorySegment keys(int layer, int block) { return storage.keys(layer).asSlice(block * blockBytes, blockBytes); }

    public MemorySegment values(int layer, int block) { return storage.values(layer).asSlice(block * blockBytes, blockBytes); }
}
