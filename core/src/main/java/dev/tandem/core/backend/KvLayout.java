package dev.tandem.core.backend;

/**
 * Shape of a paged KV cache: for each layer, numBlocks blocks of blockSize token slots, each slot holding
 * kvHeads * headDim keys and as many values.
 */
public record KvLayout(int layers, int numBlocks, int blockSize, int kvHeads, int headDim) {
    public static final int DEFAULT_BLOCK_SIZE = 16;

    public KvLayout {
        if (layers <= 0 || numBlocks <= 0 || blockSize <= 0 || kvHeads <= 0 || headDim <= 0) {
            throw new IllegalArgumentException("bad KV layout " + layers + "/" + numBlocks + "/" + blockSize + "/" + kvHeads + "/" + headDim);
        }
    }

    public int kvDim() { return kvHeads * headDim; }

    public long slots() { return (long) numBlocks * blockSize; }

    /** Bytes of keys plus values for one token in all layers at f32. */
    public long bytesPerToken() { return 2L * layers * kvDim() * Float.BYTES; }
}
