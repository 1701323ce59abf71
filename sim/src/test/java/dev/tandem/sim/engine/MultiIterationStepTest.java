package dev.tandem.sim.engine;

import dev.tandem.sim.Simulation;
import dev.tandem.sim.config.Design;
import dev.tandem.sim.config.InstanceSpec;
import dev.tandem.sim.config.ModelSpec;
import dev.tandem.sim.config.SimConfig;
import dev.tandem.sim.config.WorkloadSpec;
import dev.tandem.sim.workload.Workloads;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Running repeated decode iterations as one step is an optimisation only: every request's latencies stay the same. */
class MultiIterationStepTest {
    static SimResult assertSameAsOneIterationPerStep(SimConfig c) {
        var perf = Simulation.profile(c.perfModel());
        var w = Workloads.build(c.workload());
        SimResult fast = new Simulator(c, perf, w, true).run(), exact = new Simulator(c, perf, w, false).run();
        assertTrue(fast.summary().events() < exact.summary().events(), fast.summary().events() + " vs " + exact.summary().events());
        assertEquals(exact.summary().preemptions(), fast.summary().preemptions());
        assertArrayEquals(exact.tokenInstance(), fast.tokenInstance());
        for (int i = 0; i < w.size(); i++) {
            assertEquals(exact.ttftS()[i], fast.ttftS()[i], 1e-9, "TTFT of request " + i);
            assertEquals(exact.e2eS()[i], fast.e2eS()[i], 1e-9, "E2E of request " + i);
        }
        return exact;
    }

    @Test
    void splitDesignWithMixedPool() {
        assertSameAsOneIterationPerStep(Design.SPLITWISE_HA.config(ModelSpec.LLAMA2_70B, SimConfig.defaultPerfModel(), 4, 3,
                new WorkloadSpec("conv", 30, 60, 0, 3)));
    }

    @Test
    void mixedPoolLendingMachines() {
        SimResult r = assertSameAsOneIterationPerStep(Design.SPLITWISE_AA.config(ModelSpec.LLAMA2_70B, SimConfig.defaultPerfModel(), 1, 4,
                new WorkloadSpec("code", 12, 30, 0, 9)));
        int changes = r.pools().size();
        assertTrue(changes > 10, changes + " pool changes");
    }

    /**
     * With the decode context term each iteration costs more than the last, so a step of several iterations cut short
     * would keep the wrong length: steps then run one iteration each, and both modes give the very same run.
     */
    @Test
    void theDecodeContextTermRunsOneIterationPerStep() {
        SimConfig c = Design.BASELINE_A100.config(ModelSpec.LLAMA2_70B, SimConfig.defaultPerfModel(), 2, 0,
                new WorkloadSpec("conv", 6, 30, 0, 5));
        c = new SimConfig(c.name(), c.model(), c.perfModel(), c.pools(), c.router(), c.kvLink(),
                new InstanceSpec(2048, 512, 16, 0.9, 0, true, 4.0, 50.0, 160), c.power(), c.workload());
        var perf = Simulation.profile(c.perfModel());
        var w = Workloads.build(c.workload());
        SimResult fast = new Simulator(c, perf, w, true).run(), exact = new Simulator(c, perf, w, false).run();
        assertEquals(exact.summary().events(), fast.summary().events());
        assertArrayEquals(exact.ttftS(), fast.ttftS());
        assertArrayEquals(exact.e2eS(), fast.e2eS());
        SimConfig plain = new SimConfig(c.name(), c.model(), c.perfModel(), c.pools(), c.router(), c.kvLink(),
                new InstanceSpec(2048, 512, 16, 0.9, 0, true, 4.0), c.power(), c.workload());
        double slower = 0;
        SimResult without = new Simulator(plain, perf, w, false).run();
        for (int i = 0; i < w.size(); i++) slower += exact.e2eS()[i] - without.e2eS()[i];
        assertTrue(slower > 0, "reading the cached KV made the run slower (" + slower + " s over all requests)");
    }

    @Test
    void baselineUnderMemoryPressure() {
        SimConfig c = Design.BASELINE_A100.config(ModelSpec.LLAMA2_70B, SimConfig.defaultPerfModel(), 3, 0,
                new WorkloadSpec("conv", 9, 60, 0, 5));
        c = new SimConfig(c.name(), c.model(), c.perfModel(), c.pools(), c.router(), c.kvLink(), new InstanceSpec(2048, 512, 16, 0.9, 15_000),
                c.power(), c.workload());
        assertTrue(assertSameAsOneIterationPerStep(c).summary().preemptions() > 0);
    }
}
