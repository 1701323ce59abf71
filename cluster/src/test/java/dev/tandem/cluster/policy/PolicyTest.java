package dev.tandem.cluster.policy;

import dev.tandem.engine.Role;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class PolicyTest {
    record W(int id, Role homeRole, Role currentRole, long pendingPromptTokens, int runningSequences,
             long freeKvBlocks, long totalKvBlocks, boolean healthy) implements WorkerState {
        static W of(int id, Role role, long pending, int running, long free) {
            return new W(id, role, role, pending, running, free, 100, true);
        }
    }

    @Test
    void baselinePicksShortestQueueAndSkipsDeadWorkers() {
        var workers = List.of(
                new W(0, Role.MIXED, Role.MIXED, 0, 0, 100, 100, false),
                W.of(1, Role.MIXED, 500, 3, 50),
                W.of(2, Role.MIXED, 100, 9, 50));
        var p = new JoinShortestQueue().place(new RequestShape(10, 10), workers).orElseThrow();
        assertEquals(new Placement(2, 2), p);
        assertTrue(p.colocated());
    }

    @Test
    void splitwiseRoutesPromptByQueueAndTokenByFreeMemory() {
        var workers = List.of(
                W.of(0, Role.PROMPT, 300, 0, 100),
                W.of(1, Role.PROMPT, 200, 0, 100),
                W.of(2, Role.TOKEN, 0, 4, 10),
                W.of(3, Role.TOKEN, 0, 8, 60));
        var routing = new SplitwiseRouting(16);
        assertEquals(new Placement(1, 3), routing.place(new RequestShape(100, 100), workers).orElseThrow());
        // needs 63 blocks: nobody can hold it
        assertTrue(routing.place(new RequestShape(500, 500), workers).isEmpty());
    }

    @Test
    void mixedPoolWorkerKeepsItsOwnTokenPhase() {
        var workers = List.of(
                W.of(0, Role.PROMPT, 5000, 0, 100),
                new W(1, Role.TOKEN, Role.MIXED, 0, 2, 80, 100, true),
                W.of(2, Role.TOKEN, 0, 1, 90));
        assertEquals(new Placement(1, 1), new SplitwiseRouting(16).place(new RequestShape(64, 64), workers).orElseThrow());
    }

    @Test
    void mixedPoolLendsATokenWorkerUnderPromptLoadAndTakesItBack() {
        var policy = new MixedPoolPolicy(1000, 0.05);
        var loaded = List.of(W.of(0, Role.PROMPT, 5000, 0, 100), W.of(1, Role.TOKEN, 0, 5, 50), W.of(2, Role.TOKEN, 0, 2, 50));
        assertEquals(List.of(new RoleChange(2, Role.TOKEN, Role.MIXED)), policy.rebalance(loaded));

        var drained = List.of(W.of(0, Role.PROMPT, 0, 0, 100), W.of(1, Role.TOKEN, 0, 5, 50),
                new W(2, Role.TOKEN, Role.MIXED, 0, 2, 50, 100, true));
        assertEquals(List.of(new RoleChange(2, Role.MIXED, Role.TOKEN)), policy.rebalance(drained));
        assertEquals(List.of(), PoolPolicy.FIXED.rebalance(loaded));
    }

    @Test
    void designsParseTheirFlags() {
        assertEquals(ClusterDesign.SPLIT_MIXED_POOL, ClusterDesign.parse("split-mixed-pool"));
        var e = assertThrows(IllegalArgumentException.class, () -> ClusterDesign.parse("both"));
        assertTrue(e.getMessage().contains("both"));
    }
}
