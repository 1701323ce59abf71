package dev.tandem.cluster.policy;

import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.function.Predicate;

/** Picks the best eligible worker; ties go to the lowest id so that routing is deterministic. */
final class Least {
    private Least() {}

    static Optional<WorkerState> of(List<? extends WorkerState> workers, Predicate<WorkerState> eligible,
                                    Comparator<WorkerState> order) {
        WorkerState best = null;
        for (WorkerState w : workers) {
            if (!eligible.test(w)) continue;
            if (best == null || order.compare(w, best) < 0) best = w;
        }
        return Optional.ofNullable(best);
    }
}
