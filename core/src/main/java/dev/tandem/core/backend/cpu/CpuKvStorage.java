package dev.tandem.core.backend.cpu;

import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * KV cache in native memory, f32. Per layer, one segment of keys and one of values, each slots x kvDim
 * (slot = block * blockSize + offset), so a token's keys for all KV heads are contiguous.
 */
public final class CpuKvStorage implements KvStorage {
    private final KvLayout layout;
    private final MemorySegment[] keys;
    private final MemorySegment[] values;

    public CpuKvStorage(KvLayout layout, Arena arena) {
        this.layout = layout;
        keys = new MemorySegment[layout.layers()];
        values = new MemorySegment[layout.layers()];
        long bytes = layout.slots() * layout.kvDim() * Float.BYTES;
        for (int l = 0; l < layout.layers(); l++) {
            keys[l] = arena.allocate(bytes, 64);
            values[l] = arena.allocate(bytes, 64);
        }
    }

    @Override
    public KvLayout layout() { return layout; }

    public MemorySegment keys(int layer) { return keys[layer]; }

    public MemorySegment values(int layer) { return values[layer]; }

    /** Byte offset of (slot, kv head) within a layer's segment. */
    public long offset(long slot, int kvHead) {
        return (slot * layout.kvDim() + (long) kvHead * layout.headDim()) * Float.BYTES;
    }

    public static CpuKvStorage of(KvStorage s) {
        if (s instanceof CpuKvStorage c) return c;
        throw new IllegalArgumentException("not CPU KV storage: " + s.getClass().getSimpleName());
    }
}
