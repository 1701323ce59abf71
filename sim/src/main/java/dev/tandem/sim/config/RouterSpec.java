package dev.tandem.sim.config;

import dev.tandem.cluster.policy.ClusterDesign;
import dev.tandem.cluster.policy.MixedPoolPolicy;
import dev.tandem.cluster.policy.PoolPolicy;
import dev.tandem.cluster.policy.RoutingPolicy;

/**
 * Which of the real router's policies run: the design (JSQ over mixed workers, fixed Splitwise pools,
 * or Splitwise pools with a mixed pool) and the mixed pool's thresholds.
 *
 * @param cells router cells: the machines are dealt out evenly (pool by pool) to this many independent
 *              routers, and arrivals to the routers in turn. 1 is one router over the whole cluster. A policy
 *              looks at every worker it owns per request, so data-center-scale clusters are run as cells of
 *              about a hundred machines, as large deployments shard their routers.
 */
public record RouterSpec(ClusterDesign design, long promptThreshold, double kvLowWatermark, int cells) {
    public RouterSpec {
        if (cells < 1) throw new IllegalArgumentException("router: cells must be >= 1, got " + cells);
    }

    public static RouterSpec of(ClusterDesign design) {
        return new RouterSpec(design, ClusterDesign.DEFAULT_PROMPT_THRESHOLD, ClusterDesign.DEFAULT_KV_LOW_WATERMARK, 1);
    }

    public RouterSpec withCells(int c) {
        return new RouterSpec(design, promptThreshold, kvLowWatermark, c);
    }

    public RoutingPolicy routing(int blockSize) {
        return design.routing(blockSize);
    }

    public PoolPolicy pools() {
        return design == ClusterDesign.SPLIT_MIXED_POOL ? new MixedPoolPolicy(promptThreshold, kvLowWatermark) : PoolPolicy.FIXED;
    }
}
