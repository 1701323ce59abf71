package dev.tandem.engine;

import dev.tandem.engine.spec.SpecDecodeStats;

/**
 * A snapshot of counters and gauges for /metrics. Latency histograms are recorded by the server, which sees
 * the requests' timings.
 */
public record EngineStats(int running, int waiting, double kvCacheUsage, int kvBlocksTotal, int kvBlocksFree,
                          long promptTokens, long generationTokens, long preemptions,
                          long prefixCacheQueries, long prefixCacheHits, long steps, SpecDecodeStats speculative) {
    /** Stats of a worker that does not speculate (routers and remote workers report these). */
    public EngineStats(int running, int waiting, double kvCacheUsage, int kvBlocksTotal, int kvBlocksFree, long promptTokens,
                       long generationTokens, long preemptions, long prefixCacheQueries, long prefixCacheHits, long steps) {
        this(running, waiting, kvCacheUsage, kvBlocksTotal, kvBlocksFree, promptTokens, generationTokens, preemptions,
                prefixCacheQueries, prefixCacheHits, steps, SpecDecodeStats.OFF);
    }
}
