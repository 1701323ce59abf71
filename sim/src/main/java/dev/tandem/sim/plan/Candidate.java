package dev.tandem.sim.plan;

import com.fasterxml.jackson.annotation.JsonProperty;
import dev.tandem.sim.config.Design;

/**
 * One provisioned cluster and what it sustains under the SLOs.
 *
 * @param promptMachines machines of the prompt pool (or all machines of a baseline)
 * @param tokenMachines  machines of the token pool (0 for a baseline)
 * @param throughputRps  highest Poisson arrival rate at which every SLO is met (requests/s), NaN if none searched
 */
public record Candidate(Design design, int promptMachines, int tokenMachines, double throughputRps) {
    @JsonProperty("cost")
    public double cost() { return design.cost(promptMachines, tokenMachines); }

    @JsonProperty("power")
    public double power() { return design.power(promptMachines, tokenMachines); }

    public int machines() { return promptMachines + tokenMachines; }
}
