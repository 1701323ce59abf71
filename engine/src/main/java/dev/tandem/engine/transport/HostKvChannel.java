package dev.tandem.engine.transport;

import dev.tandem.core.backend.KvStorage;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/** A channel that sends from a cache in host memory block by block, straight from the cache's slices. */
abstract class HostKvChannel extends KvChannel {
    HostKvChannel(String name, KvTransferStats stats) { super(name, stats); }

    protected abstract void block(long reservation, int layer, int index, MemorySegment keys, MemorySegment values) throws IOException;

    protected abstract void commit(long reservation, int[] tokens) throws IOException;

    @Override
    protected final long layer(long reservation, KvStorage source, int layer, int[] blocks, int firstIndex, Object mark, long deadline) throws IOException {
        HostKv kv = HostKv.of(source);
        for (int i = 0; i < blocks.length; i++) block(reservation, layer, firstIndex + i, kv.keys(layer, blocks[i]), kv.values(layer, blocks[i]));
        return 2L * blocks.length * kv.blockBytes();
    }

    @Override
    protected final void commit(long reservation, int[] tokens, long deadline) throws IOException { commit(reservation, tokens); }
}
