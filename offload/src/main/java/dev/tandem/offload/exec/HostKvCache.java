package dev.tandem.offload.exec;

import java.lang.foreign.MemorySegment;

/**
 * The KV cache of one GPU batch in host memory, laid out for a batch job rather than for serving: every sequence
 * of the batch has {@code capacity} slots (its prompt plus its generation, known up front), so a layer's keys are
 * one segment of {@code [sequence][position][kvDim]} and a sequence's positions are contiguous. That lets the
 * executor move a layer's cache to the GPU or back in one copy per sequence, and lets {@link HostAttention} stream
 * it at memory bandwidth. Elements are f32 (bit-for-bit the in-memory CPU engine's cache) or bf16 (half the bytes,
 * the CUDA backend's own KV precision).
 */
public final class HostKvCache {
    private final int sequences, capacity, kvDim;
    private final boolean bf16;
    private final MemorySegment[] keys, values;

    /**
     * @param memory where each layer's segments come from (pinned memory on the CUDA path)
     * @param layers how many layers this cache holds (the executor may keep some layers' caches on the GPU)
     */
    public HostKvCache(HostMemory memory, int layers, int sequences, int capacity, int kvDim, boolean bf16) {
        this.sequences = sequences;
        this.capacity = capacity;
        this.kvDim = kvDim;
        this.bf16 = bf16;
        keys = new MemorySegment[layers];
        values = new MemorySegment[layers];
        long bytes = layerBytes();
        for (int l = 0; l < layers; l++) {
            keys[l] = memory.allocate(bytes);
            values[l] = memory.allocate(bytes);
        }
    }

    public int sequences() { return sequences; }

    public int capacity() { return capacity; }

    public int kvDim() { return kvDim; }

    public boolean bf16() { return bf16; }

    public int elementBytes() { return bf16 ? 2 : 4; }

    /** Bytes of keys (or of values) of one layer. */
    public long layerBytes() { return (long) sequences * capacity * kvDim * elementBytes(); }

    public MemorySegment keys(int layer) { return keys[layer]; }

    public MemorySegment values(int layer) { return values[layer]; }

    /** Byte offset of (sequence, position) in a layer's segment. */
    public long offset(int sequence, int position) {
        return ((long) sequence * capacity + position) * kvDim * elementBytes();
    }

    /** Bytes of all layers' keys and values. */
    public static long bytes(int layers, int sequences, int capacity, int kvDim, boolean bf16) {
        return 2L * layers * sequences * capacity * kvDim * (bf16 ? 2 : 4);
    }
}
