package dev.tandem.cluster.policy;

import dev.tandem.engine.Role;

import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/**
 * Splitwise's two-level routing: the prompt phase goes to the prompt-capable worker with the
 * fewest pending prompt tokens (join the shortest queue), the token phase to the token-capable
 * worker with the most free KV blocks (then fewest running sequences) that can hold the request.
 * A mixed-pool worker chosen for the prompt keeps the token phase too, avoiding a transfer.
 */
public final class SplitwiseRouting implements RoutingPolicy {
    private final int blockSize;

    /** @param blockSize tokens per KV block, to tell whether a worker can hold the request */
    public SplitwiseRouting(int blockSize) {
        if (blockSize < 1) throw new IllegalArgumentException("blockSize must be >= 1, got " + blockSize);
        this.blockSize = blockSize;
    }

    private static final Comparator<WorkerState> PROMPT_ORDER = Comparator
            .comparingLong(WorkerState::pendingPromptTokens)
            .thenComparing(w -> w.currentRole() != Role.PROMPT) // dedicated prompt workers first
            .thenComparingInt(WorkerState::id);

    private static final Comparator<WorkerState> TOKEN_ORDER = Comparator
            .comparingLong((WorkerState w) -> -w.freeKvBlocks())
            .thenComparingInt(WorkerState::runningSequences)
            .thenComparingInt(WorkerState::id);

    @Override
    public Optional<Placement> place(RequestShape request, List<? extends WorkerState> workers) {
        long blocks = blocksFor(request);
        Optional<WorkerState> prompt = Least.of(workers, WorkerState::takesPrompts, PROMPT_ORDER);
        if (prompt.isEmpty()) return Optional.empty();
        WorkerState p = prompt.get();
        if (p.currentRole() == Role.MIXED && p.freeKvBlocks() >= blocks) {
            return Optional.of(new Placement(p.id(), p.id()));
        }
        return Least.of(workers, w -> w.takesTokens() && w.freeKvBlocks() >= blocks, TOKEN_ORDER)
                .map(t -> new Placement(p.id(), t.id()));
    }

    /** KV blocks the request needs at its longest. */
    public long blocksFor(RequestShape request) {
        long tokens = (long) request.promptTokens() + request.maxNewTokens();
        return (tokens + blockSize - 1) / blockSize;
    }
}
