package dev.tandem.sim.config;

import dev.tandem.engine.Role;

/**
 * A group of identical machines provisioned for one role. Each machine holds gpus / tensorParallel
 * instances; each instance runs the model on tensorParallel GPUs.
 */
public record PoolSpec(String name, Role role, int machines, int tensorParallel, MachineType machine) {
    public PoolSpec {
        if (machines < 0) throw new IllegalArgumentException("pool '" + name + "': machines must be >= 0, got " + machines);
        if (tensorParallel < 1 || machine.gpus() % tensorParallel != 0) {
            throw new IllegalArgumentException("pool '" + name + "': tensor_parallel " + tensorParallel + " must divide the machine's "
                    + machine.gpus() + " GPUs");
        }
    }

    public int instancesPerMachine() {
        return machine.gpus() / tensorParallel;
    }

    public int instances() {
        return machines * instancesPerMachine();
    }

    public double cost() {
        return machines * machine.cost();
    }

    public double power() {
        return machines * machine.power();
    }
}
