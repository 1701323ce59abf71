package dev.tandem.sim;

import dev.tandem.cluster.policy.ClusterDesign;
import dev.tandem.engine.Role;
import dev.tandem.sim.config.ConfigLoader;
import dev.tandem.sim.config.Design;
import dev.tandem.sim.config.InstanceSpec;
import dev.tandem.sim.config.ModelSpec;
import dev.tandem.sim.config.RouterSpec;
import dev.tandem.sim.config.SimConfig;
import dev.tandem.sim.config.WorkloadSpec;
import dev.tandem.sim.engine.SimResult;
import dev.tandem.sim.perf.PhaseTimes;
import dev.tandem.sim.workload.Workload;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

class SimulatorTest {
    static final Path PERF = SimConfig.defaultPerfModel();
    static final WorkloadSpec CONV = new WorkloadSpec("conv", 20, 60, 0, 7);

    static SimConfig design(Design d, int np, int nt, WorkloadSpec w) {
        return d.config(ModelSpec.LLAMA2_70B, PERF, np, nt, w);
    }

    static Workload one(int prompt, int output) {
        return new Workload("one request", new double[]{0.5}, new int[]{prompt}, new int[]{output});
    }

    static PhaseTimes times(String hw) {
        return Simulation.profile(PERF).get("llama2-70b", hw, 8);
    }

    @Test
    void aRequestAloneTakesTheProfilesPromptTimeThenOneTokenTimePerToken() {
        SimResult r = Simulation.run(design(Design.BASELINE_A100, 2, 0, CONV), one(1500, 101));
        PhaseTimes a100 = times("a100-80gb");
        assertEquals(a100.promptSeconds(1500), r.ttftS()[0], 1e-12);
        assertEquals(a100.promptSeconds(1500) + 100 * a100.tokenSeconds(1), r.e2eS()[0], 1e-9);
        assertEquals(a100.tokenSeconds(1), r.tbtS()[0], 1e-12);
        // alone on the reference machine: every slowdown is 1
        assertEquals(1.0, r.summary().ttftSlowdown().p50(), 1e-9);
        assertEquals(1.0, r.summary().e2eSlowdown().p50(), 1e-9);
        assertTrue(r.summary().slosMet());
    }

    @Test
    void splitRequestPaysTheExposedKvTransferBetweenPromptAndTokenMachines() {
        SimConfig c = design(Design.SPLITWISE_HA, 1, 1, CONV);
        SimResult r = Simulation.run(c, one(2000, 11));
        PhaseTimes h100 = times("h100-80gb"), a100 = times("a100-80gb");
        double prefill = h100.promptSeconds(2000);
        double kv = c.kvLink().exposedSeconds(2000L * ModelSpec.LLAMA2_70B.kvBytesPerToken(), 80, prefill);
        assertEquals(prefill, r.ttftS()[0], 1e-12);
        assertEquals(prefill + kv + 10 * a100.tokenSeconds(1), r.e2eS()[0], 1e-9);
        assertEquals(0, r.promptInstance()[0]);
        assertEquals(1, r.tokenInstance()[0]);
        // Layer-wise overlap hides all but one layer's share (or what compute could not cover).
        double wire = 2000.0 * ModelSpec.LLAMA2_70B.kvBytesPerToken() / (200.0 * (1 << 30));
        assertEquals(10e-6 + wire / 80, kv, 1e-12);
    }

    @Test
    void sameSeedGivesTheSameResultsBitForBitAndAnotherSeedDoesNot() {
        SimConfig c = design(Design.SPLITWISE_AA, 5, 3, new WorkloadSpec("conv", 25, 60, 0, 11));
        SimResult a = Simulation.run(c), b = Simulation.run(c);
        assertTrue(a.summary().requests() > 1000);
        assertArrayEquals(a.ttftS(), b.ttftS()); // assertArrayEquals on doubles compares bits (NaN == NaN)
        assertArrayEquals(a.tbtS(), b.tbtS());
        assertArrayEquals(a.e2eS(), b.e2eS());
        assertArrayEquals(a.tokenInstance(), b.tokenInstance());
        assertEquals(a.summary().slos(), b.summary().slos());
        SimResult other = Simulation.run(c.withWorkload(new WorkloadSpec("conv", 25, 60, 0, 12)));
        assertFalse(Arrays.equals(a.e2eS(), other.e2eS()));
    }

    @Test
    void baselineTokenTimesSufferFromMixedBatchesWhileSplitTokenTimesDoNot() {
        WorkloadSpec w = new WorkloadSpec("code", 20, 60, 0, 3); // prompt-heavy
        SimResult base = Simulation.run(design(Design.BASELINE_H100, 8, 0, w));
        SimConfig fixedPools = design(Design.SPLITWISE_HH, 5, 3, w);
        SimResult split = Simulation.run(fixedPools.withRouter(RouterSpec.of(ClusterDesign.SPLIT)));
        assertEquals(base.summary().requests(), split.summary().requests());
        assertTrue(base.summary().tbtS().p90() > 1.5 * split.summary().tbtS().p90(),
                base.summary().tbtS().p90() + " vs " + split.summary().tbtS().p90());
    }

    @Test
    void memoryPressurePreemptsAndRecomputesButEveryRequestFinishes() {
        SimConfig c = design(Design.BASELINE_A100, 2, 0, new WorkloadSpec("conv", 6, 60, 0, 5));
        SimConfig tight = new SimConfig(c.name(), c.model(), c.perfModel(), c.pools(), c.router(), c.kvLink(),
                new InstanceSpec(2048, 512, 16, 0.9, 12_000), c.power(), c.workload());
        SimResult roomy = Simulation.run(c), r = Simulation.run(tight);
        assertEquals(0, roomy.summary().preemptions());
        assertTrue(r.summary().preemptions() > 0);
        assertEquals(r.summary().requests(), r.summary().completed());
        assertTrue(r.summary().e2eS().p99() > roomy.summary().e2eS().p99());
    }

    /**
     * Chunked prefill under memory pressure: a prompt part way through keeps its memory and goes on first, ahead of
     * sequences that preemption puts back in the queue (which could otherwise wait for memory that only the half-done
     * prompt holds); every request still finishes.
     */
    @Test
    void chunkedPrefillUnderMemoryPressureFinishesEveryRequest() {
        SimConfig c = design(Design.BASELINE_A100, 2, 0, new WorkloadSpec("conv", 6, 60, 0, 5));
        SimConfig tight = new SimConfig(c.name(), c.model(), c.perfModel(), c.pools(), c.router(), c.kvLink(),
                new InstanceSpec(2048, 512, 16, 0.9, 12_000, true), c.power(), c.workload());
        SimResult r = Simulation.run(tight);
        assertTrue(r.summary().preemptions() > 0);
        assertEquals(r.summary().requests(), r.summary().completed());
    }

    @Test
    void mixedPoolLendsTokenMachinesUnderAPromptBacklog() {
        SimConfig c = design(Design.SPLITWISE_AA, 1, 4, new WorkloadSpec("code", 12, 30, 0, 9));
        SimResult r = Simulation.run(c);
        int maxMixed = 0;
        for (int i = 0; i < r.pools().size(); i++) maxMixed = Math.max(maxMixed, r.pools().count(i, Role.MIXED.ordinal()));
        assertTrue(maxMixed > 0, "no token machine was lent to the mixed pool");
        SimResult fixed = Simulation.run(c.withRouter(RouterSpec.of(ClusterDesign.SPLIT)));
        for (int i = 0; i < fixed.pools().size(); i++) assertEquals(0, fixed.pools().count(i, Role.MIXED.ordinal())); // never lends
        assertTrue(r.summary().ttftS().p90() < fixed.summary().ttftS().p90());
    }

    @Test
    void poolsChangeOnlyOnTheRoutersTimerNotAfterEachPlacement() {
        SimConfig c = design(Design.SPLITWISE_AA, 1, 4, new WorkloadSpec("code", 12, 30, 0, 9));
        assertEquals(0.020, c.router().rebalancePeriodS()); // the real router's default period
        double period = 0.05;
        Workload w = dev.tandem.sim.workload.Workloads.build(c.workload());
        SimResult r = Simulation.run(c.withRouter(c.router().withRebalancePeriod(period)), w);
        assertTrue(r.pools().size() > 3, "the mixed pool never changed");
        for (int i = 1; i < r.pools().size() - 1; i++) { // the last record is the end of the run
            double ticks = (r.pools().time(i) - w.arrivalS()[0]) / period;
            assertEquals(Math.rint(ticks), ticks, 1e-6, "pool change at " + r.pools().time(i) + " s is off the timer");
        }
    }

    @Test
    void routerCellsSplitTheClusterAndStillServeEveryRequest() {
        SimConfig c = design(Design.SPLITWISE_HH, 8, 4, new WorkloadSpec("conv", 40, 30, 0, 2));
        SimResult cells = Simulation.run(c.withRouter(c.router().withCells(4)));
        assertEquals(cells.summary().requests(), cells.summary().completed());
        var bad = assertThrows(IllegalArgumentException.class, () -> Simulation.run(c.withRouter(c.router().withCells(5))));
        assertTrue(bad.getMessage().contains("fewer than the 5 router cells"), bad.getMessage());
    }

    @Test
    void everyExampleConfigLoadsAndRuns() throws Exception {
        try (var files = Files.list(Path.of("configs"))) {
            var list = files.sorted().toList();
            assertEquals(12, list.size()); // the six designs, a fixed-pool JSON one, and five H200 configs on a measured profile
            for (Path f : list) {
                SimConfig c = ConfigLoader.load(f);
                SimResult r = Simulation.run(c.withWorkload(new WorkloadSpec(c.workload().trace(), 10, 10, 0, 1)));
                assertEquals(r.summary().requests(), r.summary().completed(), f.toString());
            }
        }
    }

    @Test
    void configErrorsNameTheFileAndTheKeyPath(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("c.yaml");
        Files.writeString(f, """
                model: llama2-70b
                router: {design: split}
                pools:
                  - {role: prompt, machines: 2, hardware: h100-80gb}
                  - {role: token, machines: ten, hardware: h100-80gb}
                workload: {trace: conv, rate: 1, duration_s: 5}
                """);
        var e = assertThrows(IllegalArgumentException.class, () -> ConfigLoader.load(f));
        assertEquals("c.yaml: pools[1].machines: expected an integer, got 'ten'", e.getMessage());
        Files.writeString(f, "model: llama2-70b\nrouter: {design: split, colour: red}\n");
        e = assertThrows(IllegalArgumentException.class, () -> ConfigLoader.load(f));
        assertTrue(e.getMessage().startsWith("c.yaml: router: unknown key 'colour'"), e.getMessage());
    }

    @Test
    void aSequenceLongerThanAnInstancesMemoryIsRejectedWithoutBlockingOthers() {
        SimConfig c = design(Design.BASELINE_A100, 1, 0, CONV);
        SimConfig tiny = new SimConfig(c.name(), c.model(), c.perfModel(), c.pools(), c.router(), c.kvLink(),
                new InstanceSpec(2048, 512, 16, 0.9, 1000), c.power(), c.workload());
        Workload w = new Workload("three", new double[]{0, 0.1, 0.2}, new int[]{200, 1200, 300}, new int[]{50, 10, 900});
        SimResult r = Simulation.run(tiny, w);
        // the 1200-token prompt never fits 1000 tokens of KV; the third (300 + 900) outgrows it while decoding: it is
        // preempted, and dropped when its recompute alone no longer fits
        assertEquals(2, r.summary().rejected());
        assertTrue(r.summary().preemptions() >= 1);
        assertTrue(Double.isNaN(r.e2eS()[1]));
        assertTrue(Double.isNaN(r.e2eS()[2]));
        assertEquals(Simulation.profile(PERF).get("llama2-70b", "a100-80gb", 8).promptSeconds(200), r.ttftS()[0], 1e-12);
    }

    /**
     * chunked_prefill: a 5,000-token prompt takes three iterations of at most 2,048 tokens, less the decodes running
     * beside it; its first token comes at the end of the third. Without it the prompt runs whole in one iteration.
     */
    @Test
    void chunkedPrefillSplitsALongPromptOverIterationsOfTheTokenBudget() {
        SimConfig c = design(Design.BASELINE_A100, 1, 0, CONV);
        SimConfig chunked = new SimConfig(c.name(), c.model(), c.perfModel(), c.pools(), c.router(), c.kvLink(),
                new InstanceSpec(2048, 512, 16, 0.9, 0, true), c.power(), c.workload());
        PhaseTimes a100 = times("a100-80gb");
        Workload alone = one(5000, 2);
        assertEquals(a100.promptSeconds(5000), Simulation.run(c, alone).ttftS()[0], 1e-12);
        double threeChunks = a100.iterationSeconds(2048, 0) + a100.iterationSeconds(2048, 0) + a100.iterationSeconds(904, 0);
        assertEquals(threeChunks, Simulation.run(chunked, alone).ttftS()[0], 1e-12);
        // Beside a running decode each chunk leaves one token of the budget to it, and the decode's tokens keep
        // coming between the chunks instead of waiting for the whole prompt.
        Workload two = new Workload("two", new double[]{0, 0.001}, new int[]{100, 5000}, new int[]{400, 2});
        SimResult whole = Simulation.run(c, two), split = Simulation.run(chunked, two);
        assertEquals(2, split.summary().completed());
        assertTrue(split.tbtS()[0] < whole.tbtS()[0], split.tbtS()[0] + " vs " + whole.tbtS()[0]);
        double chunksBesideADecode = a100.mixedSeconds(2047, 1) + a100.mixedSeconds(2047, 1) + a100.mixedSeconds(906, 1);
        assertEquals(a100.promptSeconds(100) - 0.001 + chunksBesideADecode, split.ttftS()[1], 1e-12);
    }

    /**
     * prefill_context_ns_per_pair: each later chunk of a prompt also pays for its attention over the earlier chunks,
     * chunk x earlier tokens x the measured time per pair (the 5,000-token prompt: 2,048 x 2,048 and 904 x 4,096 pairs),
     * and every chunk for its causal pairs within itself, on the prompt curve without the profile rows' own attention.
     */
    @Test
    void laterChunksPayForTheirAttentionOverTheEarlierOnes() {
        SimConfig c = design(Design.BASELINE_A100, 1, 0, CONV);
        SimConfig chunked = new SimConfig(c.name(), c.model(), c.perfModel(), c.pools(), c.router(), c.kvLink(),
                new InstanceSpec(2048, 512, 16, 0.9, 0, true, 4.0), c.power(), c.workload());
        // With a cost per pair the prompt curve loses its rows' own attention, and each chunk pays its causal pairs too.
        PhaseTimes a100 = times("a100-80gb").withoutPromptAttention(4e-9);
        double threeChunks = a100.iterationSeconds(2048, 0) + a100.iterationSeconds(2048, 0) + a100.iterationSeconds(904, 0);
        double context = (2048.0 * 2048 + 904.0 * 4096) * 4e-9, within = (2 * 2048.0 * 2049 / 2 + 904.0 * 905 / 2) * 4e-9;
        assertEquals(threeChunks + context + within, Simulation.run(chunked, one(5000, 2)).ttftS()[0], 1e-12);
        assertThrows(IllegalArgumentException.class, () -> new InstanceSpec(2048, 512, 16, 0.9, 0, true, -1));
    }

    /**
     * With the measured terms on (the H200 configs: attention per pair, KV reads per cached token, the front end), a
     * request alone is its own unloaded reference: TTFT slowdown 1 whatever its length (up to one chunk).
     */
    @Test
    void aRequestAloneOnTheH200ConfigHasATtftSlowdownOfOne() {
        SimConfig c = ConfigLoader.load(Path.of("configs/h200-llama3-8b-mixed.yaml"));
        for (int prompt : new int[] {128, 1024, 2000}) {
            SimResult r = Simulation.run(c, one(prompt, 2));
            assertEquals(1.0, r.summary().ttftSlowdown().p50(), 1e-9, prompt + " tokens");
        }
    }

    /** router.front_end_s: every token reaches the client that much later, so TTFT and E2E grow by it and TBT does not. */
    @Test
    void theFrontEndDelaysTtftAndE2eAlikeAndNotTheGaps() {
        SimConfig c = design(Design.BASELINE_A100, 1, 0, CONV);
        RouterSpec r = c.router();
        SimConfig fronted = new SimConfig(c.name(), c.model(), c.perfModel(), c.pools(),
                new RouterSpec(r.design(), r.promptThreshold(), r.kvLowWatermark(), r.cells(), r.rebalancePeriodS(), 0.003), c.kvLink(),
                c.instance(), c.power(), c.workload());
        SimResult with = Simulation.run(fronted, one(1000, 51)), without = Simulation.run(c, one(1000, 51));
        assertEquals(without.ttftS()[0] + 0.003, with.ttftS()[0], 1e-12);
        assertEquals(without.e2eS()[0] + 0.003, with.e2eS()[0], 1e-12);
        assertEquals(without.tbtS()[0], with.tbtS()[0], 1e-12);
        assertThrows(IllegalArgumentException.class, () -> new RouterSpec(r.design(), 1, 0.05, 1, 0.02, -1));
    }

    /**
     * decode_context_ns_per_token: each decode iteration also pays for reading its sequences' cached K and V beyond the
     * base the profile held (one request: 1,000 prompt tokens, then 50 decode iterations over 1,000..1,049 cached tokens).
     */
    @Test
    void decodeStepsPayForTheKvTheyReadBeyondTheProfilesContext() {
        SimConfig c = design(Design.BASELINE_A100, 1, 0, CONV);
        SimConfig charged = new SimConfig(c.name(), c.model(), c.perfModel(), c.pools(), c.router(), c.kvLink(),
                new InstanceSpec(2048, 512, 16, 0.9, 0, true, 0, 50.0, 128), c.power(), c.workload());
        SimConfig plain = new SimConfig(c.name(), c.model(), c.perfModel(), c.pools(), c.router(), c.kvLink(),
                new InstanceSpec(2048, 512, 16, 0.9, 0, true, 0), c.power(), c.workload());
        SimResult with = Simulation.run(charged, one(1000, 51)), without = Simulation.run(plain, one(1000, 51));
        assertEquals(without.ttftS()[0], with.ttftS()[0], 1e-12, "the prefill does not read a decode's context");
        double kv = 0;
        for (int j = 0; j < 50; j++) kv += (1000 + j - 128) * 50e-9;
        assertEquals(without.e2eS()[0] + kv, with.e2eS()[0], 1e-9);
        assertThrows(IllegalArgumentException.class, () -> new InstanceSpec(2048, 512, 16, 0.9, 0, true, 0, -1, 128));
    }

    @Test
    void energyIsBusyTimeByPhaseAtItsPowerPlusIdleTime() {
        SimResult r = Simulation.run(design(Design.BASELINE_A100, 2, 0, CONV), one(1000, 51));
        PhaseTimes a100 = times("a100-80gb");
        double prefill = a100.promptSeconds(1000), decode = 50 * a100.tokenSeconds(1), span = prefill + decode;
        // one machine prefills then decodes (0.95 and 0.65 of its 6.5 kW TDP), the other idles at 0.25
        double joules = 6500 * (0.95 * prefill + 0.65 * decode + 0.25 * span);
        assertEquals(joules / 3.6e6, r.summary().energyKWh(), 1e-9);
        assertEquals(2 * 2.21, r.summary().costPerHour(), 1e-12);
        assertEquals(2 * 24.8, r.summary().powerUnits(), 1e-12);
    }
}
