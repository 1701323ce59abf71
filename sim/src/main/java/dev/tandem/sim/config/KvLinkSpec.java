package dev.tandem.sim.config;

/**
 * The link that carries a request's KV cache from its prompt instance to its token instance.
 *
 * @param bandwidthGBps    per sending instance, in GiB/s (SplitwiseSim: 200, i.e. 8 x 200 Gb/s InfiniBand per DGX)
 * @param latencyS         fixed cost per transfer
 * @param layerwiseOverlap stream each layer's KV while later layers compute, leaving only the last layer's
 *                         transfer (or whatever compute could not hide) after the prompt phase
 */
public record KvLinkSpec(double bandwidthGBps, double latencyS, boolean layerwiseOverlap) {
    public static final KvLinkSpec DEFAULT = new KvLinkSpec(200, 10e-6, true);

    public KvLinkSpec {
        if (!(bandwidthGBps > 0) || !(latencyS >= 0)) {
            throw new IllegalArgumentException("kv_link: bandwidth_gbps must be > 0 and latency_s >= 0");
        }
    }

    /**
     * Seconds from the end of the prompt phase until the token instance has the whole KV cache.
     *
     * @param prefillS how long the prompt phase computed (the time layer-wise streaming can hide behind)
     */
    public double exposedSeconds(long bytes, int layers, double prefillS) {
        double wire = bytes / (bandwidthGBps * 1024.0 * 1024 * 1024);
        if (!layerwiseOverlap) return latencyS + wire;
        // Layer i streams while layers i+1.. compute; the last layer can only go once compute ends.
        return latencyS + Math.max(wire / layers, wire - prefillS * (layers - 1) / layers);
    }
}
