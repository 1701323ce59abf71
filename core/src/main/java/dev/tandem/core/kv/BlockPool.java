package dev.tandem.core.kv;

import java.util.ArrayDeque;

/**
 * The KV cache's fixed-size blocks: a free queue and a reference count per block. Sequences hold blocks
 * through {@link BlockTable}s; a block returns to the free queue when its last holder lets go.
 */
public final class BlockPool {
    private final int numBlocks;
    private final int blockSize;
    private final int[] refCount;
    private final ArrayDeque<Integer> free = new ArrayDeque<>();

    public BlockPool(int numBlocks, int blockSize) {
        this.numBlocks = numBlocks;
        this.blockSize = blockSize;
        this.refCount = new int[numBlocks];
        for (int b = 0; b < numBlocks; b++) free.addLast(b);
    }

    public int blockSize() { return blockSize; }

    public int numBlocks() { return numBlocks; }

    public int freeBlocks() { return free.size(); }

    /** Takes a free block, or returns -1 when none is left. */
    public int allocate() {
        Integer b = free.pollFirst();
        if (b == null) return -1;
        refCount[b] = 1;
        return b;
    }

    public void retain(int block) {
        if (refCount[block] <= 0) throw new IllegalStateException("block " + block + " is free");
        refCount[block]++;
    }

    public void release(int block) {
        if (refCount[block] <= 0) throw new IllegalStateException("block " + block + " released twice");
        if (--refCount[block] == 0) free.addLast(block);
    }

    public int refCount(int block) { return refCount[block]; }
}
