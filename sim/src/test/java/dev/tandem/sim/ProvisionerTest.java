package dev.tandem.sim;

import dev.tandem.sim.config.Design;
import dev.tandem.sim.config.ModelSpec;
import dev.tandem.sim.config.SimConfig;
import dev.tandem.sim.plan.Candidate;
import dev.tandem.sim.plan.Provisioner;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class ProvisionerTest {
    static Provisioner provisioner() {
        return new Provisioner(ModelSpec.LLAMA2_70B, SimConfig.defaultPerfModel(), "conv", 30, 1);
    }

    @Test
    void maxRateMeetsTheSlosAndTwoPercentMoreDoesNot() {
        Provisioner p = provisioner();
        double r = p.maxRate(Design.BASELINE_A100, 3, 0);
        assertTrue(r > 0.5, "rate " + r);
        assertTrue(p.meets(Design.BASELINE_A100, 3, 0, r));
        assertTrue(p.simulations() < 20, p.simulations() + " simulations"); // doubling + bisection, not a scan
        assertFalse(p.meets(Design.BASELINE_A100, 3, 0, r * 1.5));
    }

    @Test
    void minCostBaselineIsTheSmallestClusterThatMeetsTheSlos() {
        Provisioner p = provisioner();
        Candidate c = p.minimise(Design.BASELINE_H100, 6, false, 32);
        assertNotNull(c);
        assertTrue(p.meets(Design.BASELINE_H100, c.promptMachines(), 0, 6));
        if (c.promptMachines() > 1) assertFalse(p.meets(Design.BASELINE_H100, c.promptMachines() - 1, 0, 6));
        assertEquals(c.promptMachines() * 4.76, c.cost(), 1e-9);
    }

    @Test
    void maxThroughputSplitStaysWithinTheBudget() {
        Provisioner p = provisioner();
        Candidate c = p.maxThroughput(Design.SPLITWISE_HA, 8 * 44, true);
        assertTrue(c.power() <= 8 * 44 + 1e-9, "power " + c.power());
        assertTrue(c.promptMachines() >= 1 && c.tokenMachines() >= 1);
        assertEquals(p.maxRate(Design.SPLITWISE_HA, c.promptMachines(), c.tokenMachines()), c.throughputRps());
    }
}
