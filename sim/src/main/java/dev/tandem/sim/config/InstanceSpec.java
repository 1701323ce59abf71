package dev.tandem.sim.config;

/**
 * Per-instance scheduler limits (SplitwiseSim's start state: batch size 512, 2048 batch tokens).
 *
 * @param maxBatchTokens    most prompt tokens started in one iteration (a longer prompt runs alone)
 * @param maxBatchSize      most sequences in one iteration
 * @param blockSize         tokens per KV block, as the router's policies count memory
 * @param memoryUtilisation share of GPU memory the engine may use (weights + KV cache)
 * @param kvCapacityTokens  when > 0, the KV capacity per instance in tokens, instead of deriving it from memory
 * @param chunkedPrefill    false: SplitwiseSim's scheduler (whole prompts; maxBatchTokens bounds the prompt tokens an
 *                          iteration starts, a longer prompt runs alone); true: Tandem's engine (running decodes first,
 *                          then prompt chunks filling what is left of maxBatchTokens, a prompt over several iterations)
 * @param contextNsPerPair  chunked prefill: seconds x 1e9 that a later chunk of a prompt adds per (new token, earlier
 *                          token) pair, its attention over the prompt's earlier chunks, which a profile of whole prompts
 *                          does not contain (Tandem measures it with `bench steps --prefill-context`); 0: not charged
 * @param decodeContextNsPerToken seconds x 1e9 that a step with decoding sequences adds per cached token of the batch
 *                          beyond {@code decodeContextBaseTokens} per sequence (in total: the batch's cached tokens minus
 *                          sequences x base): the decode attention reads every cached token's K and V, while a profile's
 *                          token curve is indexed by batch size alone (Tandem measures it with `bench steps --context`);
 *                          0: not charged. Steps then run one iteration each (no multi-iteration decode steps)
 * @param decodeContextBaseTokens the context per sequence that the profile's token rows already held (their prompt size)
 */
public record InstanceSpec(int maxBatchTokens, int maxBatchSize, int blockSize, double memoryUtilisation, long kvCapacityTokens,
                           boolean chunkedPrefill, double contextNsPerPair, double decodeContextNsPerToken, long decodeContextBaseTokens) {
    public static final InstanceSpec DEFAULT = new InstanceSpec(2048, 512, 16, 0.9, 0, false, 0);

    public InstanceSpec(int maxBatchTokens, int maxBatchSize, int blockSize, double memoryUtilisation, long kvCapacityTokens,
                        boolean chunkedPrefill, double contextNsPerPair) {
        this(maxBatchTokens, maxBatchSize, blockSize, memoryUtilisation, kvCapacityTokens, chunkedPrefill, contextNsPerPair, 0, 0);
    }

    public InstanceSpec(int maxBatchTokens, int maxBatchSize, int blockSize, double memoryUtilisation, long kvCapacityTokens) {
        this(maxBatchTokens, maxBatchSize, blockSize, memoryUtilisation, kvCapacityTokens, false, 0);
    }

    public InstanceSpec(int maxBatchTokens, int maxBatchSize, int blockSize, double memoryUtilisation, long kvCapacityTokens,
                        boolean chunkedPrefill) {
        this(maxBatchTokens, maxBatchSize, blockSize, memoryUtilisation, kvCapacityTokens, chunkedPrefill, 0);
    }

    public InstanceSpec {
        if (maxBatchTokens < 1 || maxBatchSize < 1 || blockSize < 1) {
            throw new IllegalArgumentException("instance: max_batch_tokens, max_batch_size and block_size must be >= 1");
        }
        if (!(memoryUtilisation > 0 && memoryUtilisation <= 1)) {
            throw new IllegalArgumentException("instance: memory_utilisation must be in (0, 1], got " + memoryUtilisation);
        }
        if (!(contextNsPerPair >= 0) || Double.isInfinite(contextNsPerPair)) {
            throw new IllegalArgumentException("instance: prefill_context_ns_per_pair must be a finite number >= 0, got " + contextNsPerPair);
        }
        if (!(decodeContextNsPerToken >= 0) || Double.isInfinite(decodeContextNsPerToken)) {
            throw new IllegalArgumentException("instance: decode_context_ns_per_token must be a finite number >= 0, got " + decodeContextNsPerToken);
        }
        if (decodeContextBaseTokens < 0) {
            throw new IllegalArgumentException("instance: decode_context_base_tokens must be >= 0, got " + decodeContextBaseTokens);
        }
    }

    /** KV tokens one instance of {@code tp} GPUs holds after the model's weights. */
    public long kvTokens(ModelSpec model, MachineType machine, int tp) {
        if (kvCapacityTokens > 0) return kvCapacityTokens;
        double bytes = tp * machine.gpuMemoryGb() * 1e9 * memoryUtilisation - model.weightBytes();
        long tokens = (long) (bytes / model.kvBytesPerToken());
        if (tokens < 1) {
            throw new IllegalArgumentException("model " + model.name() + " does not fit on " + tp + " x " + machine.hardware()
                    + " (" + machine.gpuMemoryGb() + " GB each at memory_utilisation " + memoryUtilisation + ")");
        }
        return tokens;
    }
}
