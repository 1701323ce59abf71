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

    @Override
    public List<RoleChange> rebalance(List<? extends WorkerState> workers) {
        List<RoleChange> changes = new ArrayList<>();
        long pending = 0;
        int promptCapable = 0;
        boolean kvShort = true;
        int tokenCapable = 0;
        for (WorkerState w : workers) {
            if (!w.healthy()) continue;
            if (w.takesPrompts()) {
                pending += w.pendingPromptTokens();
                promptCapable++;
            }
            if (w.takesTokens()) {
                tokenCapable++;
                if (w.freeKvBlocks() >= kvLowWatermark * w.totalKvBlocks()) kvShort = false;
            }
        }
        boolean promptsBacklogged = promptCapable == 0 || pending / Math.max(1, promptCapable) > promptThreshold;

        WorkerState lendToken = null;
        WorkerState lendPrompt = null;
        for (WorkerState w : workers) {
            if (!w.healthy()) continue;
            boolean lent = w.currentRole() == Role.MIXED && w.homeRole() != Role.MIXED;
            // Home only once the cause of the loan is gone too, else the next call lends it again at once.
            boolean causeGone = w.homeRole() == Role.TOKEN ? !promptsBacklogged : !kvShort;
            if (lent && drained(w) && causeGone) {
                changes.add(new RoleChange(w.id(), Role.MIXED, w.homeRole()));
                continue;
            }
            if (w.currentRole() == Role.TOKEN && promptsBacklogged && tokenCapable > 1
                    && (lendToken == null || w.runningSequences() < lendToken.runningSequences())) {
                lendToken = w;
            }
            if (w.currentRole() == Role.PROMPT && kvShort && !promptsBacklogged && promptCapable > 1
                    && w.pendingPromptTokens() == 0 && lendPrompt == null) {
                lendPrompt = w;
            }
        }
        if (lendToken != null) changes.add(new RoleChange(lendToken.id(), Role.TOKEN, Role.MIXED));
        if (lendPrompt != null) changes.add(new RoleChange(lendPrompt.id(), Role.PROMPT, Role.MIXED));
        return changes;
    }

    /** A lent worker goes home when the work that caused the loan is gone. */
    private boolean drained(WorkerState w) {
        return w.homeRole() == Role.TOKEN
                ? w.pendingPromptTokens() == 0
                : w.runningSequences() == 0;
    }
}
