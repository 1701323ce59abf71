package dev.tandem.core.backend.cpu;

import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * KV cache in native memory. Per layer, one segment of keys and one of values, each slots x {@link KvLayout#slotBytes()}
 * (slot = block * blockSize + offset), so a token's keys for all KV heads are contiguous: kvDim f32 values, or for
 * {@link KvLayout.Format#GQ4} one 4-bit record per KV head (nibbles, then the fp16 mins and scales of its groups).
 */
public final class CpuKvStorage implements KvStorage {
    /** Bytes past the last slot: attention reads a head's last values as a whole vector and drops the lanes beyond. */
    static final long SLACK = 64;
    private final KvLayout layout;
    private final long slotBytes;
    private final MemorySegment[] keys;
    private final MemorySegment[] values;

    public CpuKvStorage(KvLayout layout, Arena arena) {
        this.layout = layout;
        this.slotBytes = layout.slotBytes();
        keys = new MemorySegment[layout.layers()];
        values = new MemorySegment[layout.layers()];
        long bytes = layout.slots() * slotBytes;
        for (int l = 0; l < layout.layers(); l++) {
            keys[l] = arena.allocate(bytes + SLACK, 64);
            values[l] = arena.allocate(bytes + SLACK, 64);
        }
    }

    @Override
    public KvLayout layout() { return layout; }

    public boolean compressed() { return layout.format() == KvLayout.Format.GQ4; }

    public MemorySegment keys(int layer) { return keys[layer]; }

    public MemorySegment values(int layer) { return values[layer]; }

    /** Bytes of one slot's keys (or values). */
    public long slotBytes() { return slotBytes; }

    /** Byte offset of (slot, kv head) within a layer's segment. */
    public long offset(long slot, int kvHead) {
        return slot * slotBytes + kvHead * (slotBytes / layout.kvHeads());
    }

    public static CpuKvStorage of(KvStorage s) {
        if (s instanceof CpuKvStorage c) return c;
        throw new IllegalArgumentException("not CPU KV storage: " + s.getClass().getSimpleName());
    }
}
