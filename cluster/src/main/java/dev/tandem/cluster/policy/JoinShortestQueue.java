package dev.tandem.cluster.policy;

import java.util.List;
import java.util.Optional;

/**
 * The colocated baseline: every worker is mixed, and a request goes whole to the one with the
 * fewest pending prompt tokens (then fewest running sequences). No KV hand-over.
 */
public final class JoinShortestQueue implements RoutingPolicy {
    @Override
    public Optional<Placement> place(RequestShape request, List<? extends WorkerState> workers) {
        WorkerState best = null;
        long bestPending = 0;
        int bestRunning = 0;
        for (int i = 0, n = workers.size(); i < n; i++) {
            WorkerState w = workers.get(i);
            if (!w.takesPrompts() || !w.takesTokens()) continue;
            long pending = w.pendingPromptTokens();
            int running = w.runningSequences();
            if (best == null || pending < bestPending
                    || (pending == bestPending && (running < bestRunning || running == bestRunning && w.id() < best.id()))) {
                best = w;
                bestPending = pending;
                bestRunning = running;
            }
        }
        return best == null ? Optional.empty() : Optional.of(new Placement(best.id(), best.id()));
    }
}
