package dev.tandem.engine.kv;

import dev.tandem.engine.sched.Sequence;

import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Map;

/**
 * The engine's KV blocks: reference counts, a free queue in eviction order, and prefix caching. A full block
 * is identified by the hash of its tokens chained with its predecessor's hash, so equal prompt prefixes map to
 * the same blocks and are not recomputed. Freed blocks keep their contents (and stay findable by hash) until
 * they are handed out again, least recently freed first. Methods that change blocks are synchronized because a
 * Splitwise token worker reserves blocks for a hand-over from the router's thread, outside the engine loop.
 */
public final class KvCacheManager {
    private final int numBlocks;
    private final int blockSize;
    private final boolean prefixCaching;
    private final int[] refCount;
    private final long[] blockHash;
    private final boolean[] hashed;
    /** Tokens and parent hash of each cached block, checked on a hit so a hash collision can never reuse wrong KV. */
    private final int[][] blockTokens;
    private final long[] parentHash;
    /** Blocks with no holder, oldest first; cached ones among them are evicted in this order. */
    private final LinkedHashSet<Integer> free = new LinkedHashSet<>();
    private final Map<Long, Integer> cached = new HashMap<>();
    private long queries, hits;

    public KvCacheManager(int numBlocks, int blockSize, boolean prefixCaching) {
        if (numBlocks <= 0) throw new IllegalArgumentException("the KV cache has no blocks; give it more memory");
        this.numBlocks = numBlocks;
        this.blockSize = blockSize;
        this.prefixCaching = prefixCaching;
        this.refCount = new int[numBlocks];
        this.blockHash = new long[numBlocks];
        this.hashed = new boolean[numBlocks];
        this.blockTokens = new int[numBlocks][];
        this.parentHash = new long[numBlocks];
        for (int b = 0; b < numBlocks; b++) free.add(b);
    }

    public int numBlocks() { return numBlocks; }

    public int blockSize() { return blockSize; }

    public synchronized int freeBlocks() { return free.size(); }

    /** Fraction of blocks held by sequences (cached but unheld blocks count as free). */
    public synchronized double usage() { return 1.0 - free.size() / (double) numBlocks; }

    public long prefixQueries() { return queries; }

    public long prefixHits() { return hits; }

    public int blocksFor(int tokens) { return (tokens + blockSize - 1) / blockSize; }

    /**
     * Takes the longest cached prefix of a new sequence's prompt, leaving at least one token to compute (its
     * logits are needed). Returns the number of prompt tokens found in the cache.
     */
    public synchronized int acquireCachedPrefix(Sequence seq) {
        if (!prefixCaching || seq.numBlocks() > 0) return 0;
        int full = (seq.promptLength() - 1) / blockSize;
        queries += seq.promptLength();
        long parent = 0;
        int found = 0;
        for (int i = 0; i < full; i++) {
            long h = hash(parent, seq.tokens(), i * blockSize);
            Integer b = cached.get(h);
            if (b == null || !holds(b, parent, seq.tokens(), i * blockSize)) break;
            if (refCount[b]++ == 0) free.remove(b);
            seq.addBlock(b);
            seq.markHashed(h);
            parent = h;
            found++;
        }
        hits += (long) found * blockSize;
        return found * blockSize;
    }

    /** Gives the sequence blocks for its first {@code tokens} positions; false (nothing taken) if too few are free. */
    public synchronized boolean allocate(Sequence seq, int tokens) {
        int need = blocksFor(tokens) - seq.numBlocks();
        if (need <= 0) return true;
        if (need > free.size()) return false;
        for (int i = 0; i < need; i++) {
            var it = free.iterator();
            int b = it.next();
            it.remove();
            if (hashed[b]) { // evict its cached contents
                cached.remove(blockHash[b], b);
                hashed[b] = false;
            }
            refCount[b] = 1;
            seq.addBlock(b);
        }
        return true;
    }

    /** Registers the sequence's newly filled blocks (its first {@code computed} tokens are in the cache) for reuse. */
    public synchronized void registerFullBlocks(Sequence seq, int computed) {
        if (!prefixCaching) return;
        int full = Math.min(computed / blockSize, seq.numBlocks());
        for (int i = seq.numHashedBlocks(); i < full; i++) {
            long h = hash(seq.lastBlockHash(), seq.tokens(), i * blockSize);
            int b = seq.block(i);
            if (!hashed[b]) {
                Integer existing = cached.putIfAbsent(h, b);
                if (existing == null) {
                    hashed[b] = true;
                    blockHash[b] = h;
                    parentHash[b] = seq.lastBlockHash();
                    blockTokens[b] = java.util.Arrays.copyOfRange(seq.tokens(), i * blockSize, (i + 1) * blockSize);
                }
            }
            seq.markHashed(h);
        }
    }

    /**
     * Frees the sequence's blocks past those holding positions [0, tokens): after speculative decoding rejected
     * drafts, the blocks that only held them. Such tail blocks were never full of committed tokens, so never cached.
     */
    public void trim(Sequence seq, int tokens) {
        int keep = blocksFor(tokens);
        if (keep < seq.numHashedBlocks()) throw new IllegalStateException("trimming sequence " + seq.id() + " into its cached blocks");
        while (seq.numBlocks() > keep) {
            int b = seq.removeLastBlock();
            if (--refCount[b] == 0) free.add(b);
        }
    }

    /** Returns the sequence's blocks; they stay cached until reused. */
    public synchronized void release(Sequence seq) {
        // Free the tail first so the prompt's first blocks, the likeliest to be shared, are evicted last.
        for (int i = seq.numBlocks() - 1; i >= 0; i--) {
            int b = seq.block(i);
            if (--refCount[b] == 0) free.add(b);
            if (refCount[b] < 0) throw new IllegalStateException("block " + b + " released twice");
        }
        seq.clearBlocks();
    }

    /** Slot of position p of the sequence. */
    public int slot(Sequence seq, int p) { return seq.block(p / blockSize) * blockSize + p % blockSize; }

    private boolean holds(int b, long parent, int[] tokens, int from) {
        return parentHash[b] == parent && java.util.Arrays.equals(blockTokens[b], 0, blockSize, tokens, from, from + blockSize);
    }

    private long hash(long parent, int[] tokens, int from) {
        long h = parent * 0x9E3779B97F4A7C15L + 0x632BE59BD9B4E019L;
        for (int i = from; i < from + blockSize; i++) {
            h ^= tokens[i];
            h *= 0xBF58476D1CE4E5B9L;
            h ^= h >>> 31;
        }
        return h;
    }
}
