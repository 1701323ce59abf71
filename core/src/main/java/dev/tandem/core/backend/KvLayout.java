package dev.tandem.core.backend;

import dev.tandem.core.quant.Gq4Layout;

/**
 * Shape of a paged KV cache: for each layer, numBlocks blocks of blockSize token slots, each slot holding
 * kvHeads * headDim keys and as many values, stored as {@code format} says.
 */
public record KvLayout(int layers, int numBlocks, int blockSize, int kvHeads, int headDim, Format format) {
    public static final int DEFAULT_BLOCK_SIZE = 16;

    /** How a slot's values are stored. */
    public enum Format {
        /** f32, the default: exact. */
        F32,
        /**
         * FlexGen's group-wise 4-bit compression ({@link dev.tandem.core.quant.GroupQuant4}), grouped along head_dim
         * (a group per 64 of head_dim per token and head): quantized as written, dequantized in attention.
         */
        GQ4
    }

    public KvLayout {
        if (layers <= 0 || numBlocks <= 0 || blockSize <= 0 || kvHeads <= 0 || headDim <= 0 || format == null) {
            throw new IllegalArgumentException("bad KV layout " + layers + "/" + numBlocks + "/" + blockSize + "/" + kvHeads + "/" + headDim + "/" + format);
        }
    }

    /** An f32 cache. */
    public KvLayout(int layers, int numBlocks, int blockSize, int kvHeads, int headDim) {
        this(layers, numBlocks, blockSize, kvHeads, headDim, Format.F32);
    }

    public KvLayout withFormat(Format f) { return new KvLayout(layers, numBlocks, blockSize, kvHeads, headDim, f); }

    public int kvDim() { return kvHeads * headDim; }

    public long slots() { return (long) numBlocks * blockSize; }

    /** The compressed layout of one slot's keys (or values): [kvHeads, headDim] grouped along headDim. GQ4 only. */
    public Gq4Layout slotLayout() {
        if (format != Format.GQ4) throw new IllegalStateException("an " + format + " KV cache has no compressed layout");
        return Gq4Layout.of(1, kvHeads, headDim);
    }

    /** Bytes of one slot's keys (as many again for its values) in one layer. */
    public long slotBytes() {
        return format == Format.F32 ? (long) kvDim() * Float.BYTES : slotLayout().packedBytes();
    }

    /** Bytes of keys plus values for one token in all layers. */
    public long bytesPerToken() { return 2L * layers * slotBytes(); }
}
