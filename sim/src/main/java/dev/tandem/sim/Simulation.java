package dev.tandem.sim;

import dev.tandem.sim.config.SimConfig;
import dev.tandem.sim.engine.SimResult;
import dev.tandem.sim.engine.Simulator;
import dev.tandem.sim.perf.PerfModel;
import dev.tandem.sim.perf.ProfileReader;
import dev.tandem.sim.workload.Workload;
import dev.tandem.sim.workload.Workloads;

import java.nio.file.Path;
import java.util.concurrent.ConcurrentHashMap;

/** The simulator's entry point: a config in, a result out. Profiles are read once per process. */
public final class Simulation {
    private static final ConcurrentHashMap<Path, PerfModel> PROFILES = new ConcurrentHashMap<>();

    private Simulation() {}

    public static PerfModel profile(Path file) {
        return PROFILES.computeIfAbsent(file.toAbsolutePath().normalize(), ProfileReader::read);
    }

    public static SimResult run(SimConfig config) {
        return run(config, Workloads.build(config.workload()));
    }

    public static SimResult run(SimConfig config, Workload workload) {
        return new Simulator(config, profile(config.perfModel()), workload).run();
    }
}
