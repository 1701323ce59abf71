package dev.tandem.cluster.policy;

import java.util.List;
import java.util.Optional;

/** Chooses the prompt and token workers of a new request (the cluster-level scheduler). */
public interface RoutingPolicy {
    /**
     * @param workers every worker of the cluster, indexed by {@link WorkerState#id()}
     * @return the placement, or empty when no healthy worker can take the request now
     */
    Optional<Placement> place(RequestShape request, List<? extends WorkerState> workers);
}
