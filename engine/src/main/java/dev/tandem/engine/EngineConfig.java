package dev.tandem.engine;

/**
 * Limits of one engine (worker).
 *
 * @param maxNumSeqs          most sequences running at once
 * @param maxNumBatchedTokens token budget of one step (decode tokens plus prefill chunks)
 * @param kvCacheBytes        memory for the paged KV cache; sets the number of blocks
 * @param blockSize           tokens per KV block
 * @param maxQueue            most requests waiting to start; more are refused (the server answers 429)
 * @param role                what this worker's scheduler accepts
 * @param prefixCaching       reuse KV blocks of identical prompt prefixes
 */
public record EngineConfig(int maxNumSeqs, int maxNumBatchedTokens, long kvCacheBytes, int blockSize, int maxQueue, Role role,
                           boolean prefixCaching) {
    public static final EngineConfig DEFAULT = new EngineConfig(64, 512, 256L << 20, 16, 1024, Role.MIXED, true);

    public EngineConfig {
        if (maxNumSeqs <= 0) throw new IllegalArgumentException("max-num-seqs must be positive, got " + maxNumSeqs);
        if (maxNumBatchedTokens <= 0) throw new IllegalArgumentException("max-num-batched-tokens must be positive, got " + maxNumBatchedTokens);
        if (kvCacheBytes <= 0) throw new IllegalArgumentException("kv-cache-memory must be positive, got " + kvCacheBytes);
        if (blockSize <= 0) throw new IllegalArgumentException("block size must be positive, got " + blockSize);
        if (maxQueue <= 0) throw new IllegalArgumentException("max-queue must be positive, got " + maxQueue);
    }

    public EngineConfig withMaxNumSeqs(int n) { return new EngineConfig(n, maxNumBatchedTokens, kvCacheBytes, blockSize, maxQueue, role, prefixCaching); }

    public EngineConfig withMaxNumBatchedTokens(int n) { return new EngineConfig(maxNumSeqs, n, kvCacheBytes, blockSize, maxQueue, role, prefixCaching); }

    public EngineConfig withKvCacheBytes(long b) { return new EngineConfig(maxNumSeqs, maxNumBatchedTokens, b, blockSize, maxQueue, role, prefixCaching); }

    public EngineConfig withMaxQueue(int n) { return new EngineConfig(maxNumSeqs, maxNumBatchedTokens, kvCacheBytes, blockSize, n, role, prefixCaching); }

    public EngineConfig withPrefixCaching(boolean on) { return new EngineConfig(maxNumSeqs, maxNumBatchedTokens, kvCacheBytes, blockSize, maxQueue, role, on); }
}
