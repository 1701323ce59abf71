package dev.tandem.sim.engine;

import dev.tandem.cluster.policy.PoolPolicy;
import dev.tandem.cluster.policy.RoutingPolicy;

import java.util.List;

/** One router and the instances it owns: its own policy objects, its own queue of requests it could not place yet. */
final class Cell {
    final Instance[] members;
    final List<Instance> view;
    final RoutingPolicy routing;
    final PoolPolicy pools;
    final IntDeque waiting = new IntDeque();

    Cell(List<Instance> members, RoutingPolicy routing, PoolPolicy pools) {
        this.members = members.toArray(new Instance[0]);
        for (int i = 0; i < this.members.length; i++) this.members[i].localId = i;
        this.view = List.of(this.members);
        this.routing = routing;
        this.pools = pools;
    }
}
