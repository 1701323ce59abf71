package dev.tandem.cluster.policy;

import dev.tandem.engine.Role;

import java.util.ArrayList;
import java.util.List;

/**
 * Splitwise's mixed pool. When the prompt pool's pending prompt tokens per prompt worker pass
 * {@code promptThreshold}, the least loaded token worker is lent to the mixed pool (it takes
 * prompts too). When token workers run short of KV memory (free fraction below
 * {@code kvLowWatermark} on every token-capable worker), an idle prompt worker is lent the other way.
 * A lent worker returns to its home pool once its queue has drained and the shortage that caused the loan is
 * over (without the second condition a worker would flap between pools at every call). At most one change per pool
 * per call, so that the pools move gradually.
 */
public final class MixedPoolPolicy implements PoolPolicy {
    private final long promptThreshold;
    private final double kvLowWatermark;

    public MixedPoolPolicy(long promptThreshold, double kvLowWatermark) {
        if (promptThreshold < 1) throw new IllegalArgumentException("promptThreshold must be >= 1");
        if (!(kvLowWatermark >= 0 && kvLowWatermark < 1)) {
            throw new IllegalArgumentException("kvLowWatermark must be in [0, 1), got " + kvLowWatermark);
        }
        this.promptThreshold = promptThreshold;
        this.kvLowWatermark = kvLowWatermark;
    }

    /** One pass over the workers (the router and the simulator call it on a timer, so its cost is per tick, not per request). */
    @Override
    public List<RoleChange> rebalance(List<? extends WorkerState> workers) {
        long pending = 0;
        int promptCapable = 0, tokenCapable = 0;
        boolean kvShort = true;
        List<WorkerState> drainedLent = null;
        WorkerState lendToken = null, lendPrompt = null;
        int lendTokenRunning = 0;
        for (int i = 0, n = workers.size(); i < n; i++) {
            WorkerState w = workers.get(i);
            if (!w.healthy()) continue;
            Role current = w.currentRole(), home = w.homeRole();
            long workerPending = w.pendingPromptTokens();
            if (w.takesPrompts()) {
                pending += workerPending;
                promptCapable++;
            }
            if (w.takesTokens()) {
                tokenCapable++;
                if (w.freeKvBlocks() >= kvLowWatermark * w.totalKvBlocks()) kvShort = false;
            }
            if (current == Role.MIXED && home != Role.MIXED) {
                if (home == Role.TOKEN ? workerPending == 0 : w.runningSequences() == 0) {
                    if (drainedLent == null) drainedLent = new ArrayList<>();
                    drainedLent.add(w);
                }
            } else if (current == Role.TOKEN) {
                int running = w.runningSequences();
                if (lendToken == null || running < lendTokenRunning) {
                    lendToken = w;
                    lendTokenRunning = running;
                }
            } else if (current == Role.PROMPT && workerPending == 0 && lendPrompt == null) {
                lendPrompt = w;
            }
        }
        boolean promptsBacklogged = promptCapable == 0 || pending / Math.max(1, promptCapable) > promptThreshold;
        List<RoleChange> changes = new ArrayList<>(2);
        if (drainedLent != null) {
            for (WorkerState w : drainedLent) {
                // Home only once the cause of the loan is gone too, else the next call lends it again at once.
                boolean causeGone = w.homeRole() == Role.TOKEN ? !promptsBacklogged : !kvShort;
                if (causeGone) changes.add(new RoleChange(w.id(), Role.MIXED, w.homeRole()));
            }
        }
        if (lendToken != null && promptsBacklogged && tokenCapable > 1) changes.add(new RoleChange(lendToken.id(), Role.TOKEN, Role.MIXED));
        if (lendPrompt != null && kvShort && !promptsBacklogged && promptCapable > 1) {
            changes.add(new RoleChange(lendPrompt.id(), Role.PROMPT, Role.MIXED));
        }
        return changes;
    }
}
