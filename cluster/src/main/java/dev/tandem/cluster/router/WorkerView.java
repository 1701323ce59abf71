package dev.tandem.cluster.router;

import dev.tandem.cluster.policy.WorkerState;
import dev.tandem.cluster.worker.Worker;
import dev.tandem.engine.EngineLoad;
import dev.tandem.engine.Role;

/**
 * A worker as the policies see it, frozen at one instant: its last reported load plus what the router itself
 * placed there since (prompt tokens not yet prefilled, sequences not yet finished), so that a burst of arrivals
 * does not all go to the worker that looked idle.
 */
record WorkerView(int id, Role homeRole, Role currentRole, long pendingPromptTokens, int runningSequences, long freeKvBlocks,
                  long totalKvBlocks, boolean healthy) implements WorkerState {

    static WorkerView of(Worker w, RouterLoad.PerWorker placed, boolean excluded) {
        EngineLoad l = w.load();
        return new WorkerView(w.id(), w.homeRole(), w.role(),
                Math.max(l.pendingPromptTokens(), placed.promptTokens()),
                Math.max(l.running() + l.reserved(), placed.sequences()),
                l.freeBlocks(), l.totalBlocks(), w.healthy() && !excluded);
    }
}
