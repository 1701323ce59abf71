package dev.tandem.cluster.policy;

import dev.tandem.engine.Role;

/**
 * A worker as the cluster policies see it. The real router implements it over workers' reported
 * stats and the simulator over its simulated instances, so both run the same policy code.
 * Implementations return a consistent snapshot: a policy reads each value more than once.
 */
public interface WorkerState {
    /** Stable index of the worker in the cluster, 0-based. */
    int id();

    /** The pool the worker was provisioned for. */
    Role homeRole();

    /** The pool it serves now: MIXED while a prompt or token worker is lent to the mixed pool. */
    Role currentRole();

    /** Prompt tokens queued or in prefill on the worker and not yet computed. */
    long pendingPromptTokens();

    /** Sequences in the worker's decode batch (and ones reserved for hand-over). */
    int runningSequences();

    /** KV-cache blocks not held by any sequence or reservation. */
    long freeKvBlocks();

    long totalKvBlocks();

    /** False once the worker missed its heartbeat or lease; policies never place work on it. */
    default boolean healthy() {
        return true;
    }

    /** Whether the worker currently accepts prompts (prefills). */
    default boolean takesPrompts() {
        return healthy() && currentRole() != Role.TOKEN;
    }

    /** Whether the worker currently accepts decodes. */
    default boolean takesTokens() {
        return healthy() && currentRole() != Role.PROMPT;
    }
}
