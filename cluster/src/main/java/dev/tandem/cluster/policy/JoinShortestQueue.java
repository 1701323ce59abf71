package dev.tandem.cluster.policy;

import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/**
 * The colocated baseline: every worker is mixed, and a request goes whole to the one with the
 * fewest pending prompt tokens (then fewest running sequences). No KV hand-over.
 */
public final class JoinShortestQueue implements RoutingPolicy {
    private static final Comparator<WorkerState> ORDER = Comparator
            .comparingLong(WorkerState::pendingPromptTokens)
            .thenComparingInt(WorkerState::runningSequences)
            .thenComparingInt(WorkerState::id);

    @Override
    public Optional<Placement> place(RequestShape request, List<? extends WorkerState> workers) {
        return Least.of(workers, w -> w.takesPrompts() && w.takesTokens(), ORDER)
                .map(w -> new Placement(w.id(), w.id()));
    }
}
