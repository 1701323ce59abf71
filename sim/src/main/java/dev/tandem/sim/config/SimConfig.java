package dev.tandem.sim.config;

import java.nio.file.Path;
import java.util.List;

/** Everything one simulation run needs, validated. Built from a YAML/JSON file or from the flag form. */
public record SimConfig(String name, ModelSpec model, Path perfModel, List<PoolSpec> pools, RouterSpec router,
                        KvLinkSpec kvLink, InstanceSpec instance, PowerSpec power, WorkloadSpec workload) {
    public SimConfig {
        pools = List.copyOf(pools);
        if (pools.stream().mapToInt(PoolSpec::instances).sum() == 0) {
            throw new IllegalArgumentException(name + ": the cluster has no machines");
        }
    }

    public SimConfig withWorkload(WorkloadSpec w) {
        return new SimConfig(name, model, perfModel, pools, router, kvLink, instance, power, w);
    }

    public SimConfig withRouter(RouterSpec r) {
        return new SimConfig(name, model, perfModel, pools, r, kvLink, instance, power, workload);
    }

    public SimConfig withPools(List<PoolSpec> p) {
        return new SimConfig(name, model, perfModel, p, router, kvLink, instance, power, workload);
    }

    public double cost() {
        return pools.stream().mapToDouble(PoolSpec::cost).sum();
    }

    public double powerUnits() {
        return pools.stream().mapToDouble(PoolSpec::power).sum();
    }

    public int machines() {
        return pools.stream().mapToInt(PoolSpec::machines).sum();
    }

    /** Where ../shared lives: -Dtandem.shared, $TANDEM_SHARED, else ../shared from the working directory. */
    public static Path sharedDir() {
        String p = System.getProperty("tandem.shared");
        if (p == null) p = System.getenv("TANDEM_SHARED");
        return Path.of(p != null ? p : "../shared");
    }

    public static Path defaultPerfModel() {
        return sharedDir().resolve("reference/splitwise-sim/perf_model.csv");
    }
}
