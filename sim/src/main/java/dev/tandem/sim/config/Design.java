package dev.tandem.sim.config;

import com.fasterxml.jackson.annotation.JsonValue;
import dev.tandem.cluster.policy.ClusterDesign;
import dev.tandem.engine.Role;

import java.nio.file.Path;
import java.util.List;

/**
 * The six cluster designs of the Splitwise paper: two colocated baselines (join-the-shortest-queue over
 * mixed machines) and four split designs (prompt and token pools plus the mixed pool), named by the GPU of
 * each pool. HHcap's token machines are H100s capped at 70% power (prompt phase 1.3x slower, token phase unchanged).
 */
public enum Design {
    BASELINE_A100("baseline-a100", ClusterDesign.MIXED, MachineType.A100, MachineType.A100),
    BASELINE_H100("baseline-h100", ClusterDesign.MIXED, MachineType.H100, MachineType.H100),
    SPLITWISE_AA("splitwise-aa", ClusterDesign.SPLIT_MIXED_POOL, MachineType.A100, MachineType.A100),
    SPLITWISE_HH("splitwise-hh", ClusterDesign.SPLIT_MIXED_POOL, MachineType.H100, MachineType.H100),
    SPLITWISE_HA("splitwise-ha", ClusterDesign.SPLIT_MIXED_POOL, MachineType.H100, MachineType.A100),
    SPLITWISE_HHCAP("splitwise-hhcap", ClusterDesign.SPLIT_MIXED_POOL, MachineType.H100, MachineType.H100_PCAP);

    private final String flag;
    private final ClusterDesign cluster;
    private final MachineType promptMachine, tokenMachine;

    Design(String flag, ClusterDesign cluster, MachineType promptMachine, MachineType tokenMachine) {
        this.flag = flag;
        this.cluster = cluster;
        this.promptMachine = promptMachine;
        this.tokenMachine = tokenMachine;
    }

    @JsonValue
    public String flag() { return flag; }

    public boolean split() { return cluster != ClusterDesign.MIXED; }

    public MachineType promptMachine() { return promptMachine; }

    public MachineType tokenMachine() { return tokenMachine; }

    public static Design parse(String flag) {
        for (Design d : values()) if (d.flag.equals(flag)) return d;
        throw new IllegalArgumentException("unknown design '" + flag
                + "' (expected baseline-a100, baseline-h100, splitwise-aa, splitwise-hh, splitwise-ha or splitwise-hhcap)");
    }

    /**
     * The design with {@code promptMachines} + {@code tokenMachines} machines (a baseline takes
     * {@code promptMachines} as its machine count and {@code tokenMachines} must be 0). One instance per
     * machine at TP 8, as in the paper.
     */
    public SimConfig config(ModelSpec model, Path perfModel, int promptMachines, int tokenMachines, WorkloadSpec workload) {
        List<PoolSpec> pools = split()
                ? List.of(new PoolSpec("prompt", Role.PROMPT, promptMachines, 8, promptMachine),
                          new PoolSpec("token", Role.TOKEN, tokenMachines, 8, tokenMachine))
                : List.of(new PoolSpec("mixed", Role.MIXED, promptMachines, 8, promptMachine));
        if (!split() && tokenMachines != 0) throw new IllegalArgumentException(flag + " has one pool: give --machines, not two pool sizes");
        if (split() && (promptMachines < 1 || tokenMachines < 1)) {
            throw new IllegalArgumentException(flag + " needs at least one prompt and one token machine, got " + promptMachines + " + " + tokenMachines);
        }
        return new SimConfig(flag, model, perfModel, pools, RouterSpec.of(cluster), KvLinkSpec.DEFAULT, InstanceSpec.DEFAULT,
                PowerSpec.DEFAULT, workload);
    }

    public double cost(int promptMachines, int tokenMachines) {
        return promptMachines * promptMachine.cost() + tokenMachines * tokenMachine.cost();
    }

    public double power(int promptMachines, int tokenMachines) {
        return promptMachines * promptMachine.power() + tokenMachines * tokenMachine.power();
    }
}
