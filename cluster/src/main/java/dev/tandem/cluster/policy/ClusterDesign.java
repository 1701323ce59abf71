package dev.tandem.cluster.policy;

/** The cluster designs Splitwise compares, as the policies each one runs. */
public enum ClusterDesign {
    /** Every worker mixed, join-the-shortest-queue: the colocated baseline. */
    MIXED("mixed"),
    /** Fixed prompt and token pools. */
    SPLIT("split"),
    /** Prompt and token pools that lend workers to a mixed pool under load. */
    SPLIT_MIXED_POOL("split-mixed-pool");

    /** Pending prompt tokens per prompt worker above which a token worker is lent (Splitwise's default region). */
    public static final long DEFAULT_PROMPT_THRESHOLD = 2048;
    public static final double DEFAULT_KV_LOW_WATERMARK = 0.05;

    private final String flag;

    ClusterDesign(String flag) {
        this.flag = flag;
    }

    public String flag() {
        return flag;
    }

    public RoutingPolicy routing(int blockSize) {
        return this == MIXED ? new JoinShortestQueue() : new SplitwiseRouting(blockSize);
    }

    public PoolPolicy pools() {
        return this == SPLIT_MIXED_POOL
                ? new MixedPoolPolicy(DEFAULT_PROMPT_THRESHOLD, DEFAULT_KV_LOW_WATERMARK)
                : PoolPolicy.FIXED;
    }

    public static ClusterDesign parse(String flag) {
        for (ClusterDesign d : values()) if (d.flag.equals(flag)) return d;
        throw new IllegalArgumentException("unknown design '" + flag + "' (expected mixed, split or split-mixed-pool)");
    }
}
