package dev.tandem.core.kv;

import java.util.Arrays;

/** A sequence's blocks in position order: position p lives in slot blocks[p / blockSize] * blockSize + p % blockSize. */
public final class BlockTable {
    private final BlockPool pool;
    private int[] blocks = new int[4];
    private int count;

    public BlockTable(BlockPool pool) { this.pool = pool; }

    /** Makes room for {@code tokens} positions; false (and nothing taken) if the pool cannot supply the blocks. */
    public boolean ensureCapacity(int tokens) {
        int need = (tokens + pool.blockSize() - 1) / pool.blockSize() - count;
        if (need <= 0) return true;
        if (need > pool.freeBlocks()) return false;
        for (int i = 0; i < need; i++) {
            if (count == blocks.length) blocks = Arrays.copyOf(blocks, count * 2);
            blocks[count++] = pool.allocate();
        }
        return true;
    }

    public int capacity() { return count * pool.blockSize(); }

    public int slot(int position) {
        int b = position / pool.blockSize();
        if (b >= count) throw new IndexOutOfBoundsException("position " + position + " beyond the " + count + " blocks held");
        return blocks[b] * pool.blockSize() + position % pool.blockSize();
    }

    /** The block ids, copied (what the attention kernel reads). */
    public int[] blocks() { return Arrays.copyOf(blocks, count); }

    public int size() { return count; }

    /** Keeps only the blocks that hold positions [0, tokens) and returns the rest to the pool. */
    public void truncate(int tokens) {
        int keep = (tokens + pool.blockSize() - 1) / pool.blockSize();
        while (count > keep) pool.release(blocks[--count]);
    }

    /** Returns every block to the pool. */
    public void release() {
        for (int i = 0; i < count; i++) pool.release(blocks[i]);
        count = 0;
    }
}
