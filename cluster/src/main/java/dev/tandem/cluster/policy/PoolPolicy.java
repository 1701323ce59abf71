package dev.tandem.cluster.policy;

import java.util.List;

/**
 * Moves workers between pools as load swings (Splitwise's mixed pool). Called by the router
 * (and the simulator) on a timer, every 20 ms by default; returns the changes to apply now.
 */
public interface PoolPolicy {
    List<RoleChange> rebalance(List<? extends WorkerState> workers);

    /** Pools stay as provisioned. */
    PoolPolicy FIXED = workers -> List.of();
}
