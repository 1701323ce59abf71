package dev.tandem.sim.config;

import dev.tandem.cluster.policy.ClusterDesign;
import dev.tandem.cluster.policy.MixedPoolPolicy;
import dev.tandem.cluster.policy.PoolPolicy;
import dev.tandem.cluster.policy.RoutingPolicy;

/**
 * Which of the real router's policies run: the design (JSQ over mixed workers, fixed Splitwise pools,
 * or Splitwise pools with a mixed pool) and the mixed pool's thresholds.
 *
 * @param cells             router cells: the machines are dealt out evenly (pool by pool) to this many independent
 *                          routers, and arrivals to the routers in turn. 1 (the default) is one router over the whole
 *                          cluster, as the real router runs; more model sharded routers.
 * @param rebalancePeriodS  simulated seconds between two calls of the pool policy, as the real router calls it on a
 *                          timer ({@link #DEFAULT_REBALANCE_PERIOD_S}, its default), not after each placement
 * @param frontEndS         seconds each token spends between the workers and the client (HTTP, streaming, the
 *                          client's parsing), added to every TTFT and E2E and to their unloaded references; Tandem
 *                          measures it as the client's TTFT minus the server's own (vllm:time_to_first_token)
 */
public record RouterSpec(ClusterDesign design, long promptThreshold, double kvLowWatermark, int cells, double rebalancePeriodS,
                         double frontEndS) {
    /** The real router's default period (Router.Config.of: 20 ms). */
    public static final double DEFAULT_REBALANCE_PERIOD_S = 0.020;

    public RouterSpec(ClusterDesign design, long promptThreshold, double kvLowWatermark, int cells, double rebalancePeriodS) {
        this(design, promptThreshold, kvLowWatermark, cells, rebalancePeriodS, 0);
    }

    public RouterSpec {
        if (cells < 1) throw new IllegalArgumentException("router: cells must be >= 1, got " + cells);
        if (!(frontEndS >= 0 && frontEndS < 60)) throw new IllegalArgumentException("router: front_end_s must be in [0, 60) seconds, got " + frontEndS);
        if (!(rebalancePeriodS > 0 && rebalancePeriodS < 3600)) {
            throw new IllegalArgumentException("router: rebalance_period_s must be in (0, 3600) seconds, got " + rebalancePeriodS);
        }
    }

    public static RouterSpec of(ClusterDesign design) {
        return new RouterSpec(design, ClusterDesign.DEFAULT_PROMPT_THRESHOLD, ClusterDesign.DEFAULT_KV_LOW_WATERMARK, 1,
                DEFAULT_REBALANCE_PERIOD_S);
    }

    public RouterSpec withCells(int c) {
        return new RouterSpec(design, promptThreshold, kvLowWatermark, c, rebalancePeriodS, frontEndS);
    }

    public RouterSpec withRebalancePeriod(double seconds) {
        return new RouterSpec(design, promptThreshold, kvLowWatermark, cells, seconds, frontEndS);
    }

    public RoutingPolicy routing(int blockSize) {
        return design.routing(blockSize);
    }

    public PoolPolicy pools() {
        return design == ClusterDesign.SPLIT_MIXED_POOL ? new MixedPoolPolicy(promptThreshold, kvLowWatermark) : PoolPolicy.FIXED;
    }
}
