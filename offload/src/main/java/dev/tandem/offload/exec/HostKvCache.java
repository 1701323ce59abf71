package dev.tandem.offload.exec;

import dev.tandem.core.quant.Gq4Layout;
import dev.tandem.core.tensor.DType;

import java.lang.foreign.MemorySegment;

/**
 * The KV cache of one GPU batch in host memory, laid out for a batch job rather than for serving: every sequence
 * of the batch has {@code capacity} slots (its prompt plus its generation, known up front), so a layer's keys are
 * one segment of {@code [sequence][position][slot]} and a sequence's positions are contiguous. That lets the executor
 * move a layer's cache to the GPU or back in one copy per sequence, and lets {@link HostAttention} stream it at memory
 * bandwidth. A slot holds one token's keys (or values) for all KV heads: f32 (bit-for-bit the in-memory CPU engine's
 * cache), bf16 (half the bytes, the CUDA backend's own KV precision) or GQ4 (FlexGen's 4-bit groups along head_dim,
 * one record per head: about 0.28 of bf16's bytes).
 */
public final class HostKvCache {
    /** How a slot stores its values. */
    public enum Format {
        F32, BF16, GQ4;

        static Format of(int elementBytes, boolean compressed) {
            return compressed ? GQ4 : elementBytes == 2 ? BF16 : F32;
        }
    }

    private final int sequences, capacity, kvHeads, headDim;
    private final Format format;
    private final long slotBytes;
    private final MemorySegment[] keys, values;

    /**
     * @param memory where each layer's segments come from (pinned memory on the CUDA path)
     * @param layers how many layers this cache holds (the executor may keep some layers' caches on the GPU)
     */
    public HostKvCache(HostMemory memory, int layers, int sequences, int capacity, int kvHeads, int headDim, Format format) {
        this.sequences = sequences;
        this.capacity = capacity;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.format = format;
        this.slotBytes = slotBytes(kvHeads, headDim, format);
        keys = new MemorySegment[layers];
        values = new MemorySegment[layers];
        long bytes = layerBytes();
        for (int l = 0; l < layers; l++) {
            keys[l] = memory.allocate(bytes);
            values[l] = memory.allocate(bytes);
        }
    }

    public static long slotBytes(int kvHeads, int headDim, Format format) {
        return switch (format) {
            case F32 -> 4L * kvHeads * headDim;
            case BF16 -> 2L * kvHeads * headDim;
            case GQ4 -> slotLayout(1, kvHeads, headDim).packedBytes();
        };
    }

    /** The GQ4 layout of {@code slots} consecutive slots: [slots, kvHeads, headDim] grouped along head_dim. */
    public static Gq4Layout slotLayout(int slots, int kvHeads, int headDim) { return Gq4Layout.of(2, slots, kvHeads, headDim); }

    public int sequences() { return sequences; }

    public int capacity() { return capacity; }

    public int kvDim() { return kvHeads * headDim; }

    public int kvHeads() { return kvHeads; }

    public int headDim() { return headDim; }

    public Format format() { return format; }

    /** The element type of an uncompressed cache (F32 or BF16). */
    public DType elementType() { return format == Format.F32 ? DType.F32 : DType.BF16; }

    public boolean bf16() { return format == Format.BF16; }

    /** Bytes of one token's keys (or values). */
    public long slotBytes() { return slotBytes; }

    /** Bytes of keys (or of values) of one layer. */
    public long layerBytes() { return (long) sequences * capacity * slotBytes; }

    public MemorySegment keys(int layer) { return keys[layer]; }

    public MemorySegment values(int layer) { return values[layer]; }

    /**
     * Writes one token's keys (or values), kvDim f32 values at {@code src + srcOff}, into the slot at {@code dst + dstOff}
     * (a {@link #keys} or {@link #values} segment) in this cache's format: bf16 rounded to nearest even, GQ4 compressed.
     * {@code row} is kvDim floats of scratch (bf16 only).
     */
    public void store(MemorySegment src, long srcOff, MemorySegment dst, long dstOff, float[] row) {
        int kvDim = kvDim();
        switch (format) {
            case F32 -> MemorySegment.copy(src, srcOff, dst, dstOff, 4L * kvDim);
            case GQ4 -> dev.tandem.core.quant.GroupQuant4.quantize(src.asSlice(srcOff, 4L * kvDim), DType.F32, slotLayout(1, kvHeads, headDim),
                    dst, dstOff, dev.tandem.core.quant.GroupQuant4.KV_RANGE); // the same refits as the GPU's KV quantizer
            case BF16 -> {
                MemorySegment.copy(src, java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, srcOff, row, 0, kvDim);
                dev.tandem.core.tensor.Codec.encode(DType.BF16, row, 0, kvDim, dst, dstOff);
            }
        }
    }

    /** Byte offset of (sequence, position) in a layer's segment. */
    public long offset(int sequence, int position) {
        return ((long) sequence * capacity + position) * slotBytes;
    }
}
