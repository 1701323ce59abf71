package dev.tandem.server.cli;

import dev.tandem.sim.config.SimConfig;
import dev.tandem.sim.plan.Objective;
import dev.tandem.sim.plan.PlanStudy;
import dev.tandem.sim.plan.Provisioner;
import dev.tandem.sim.report.SimReport;

import java.nio.file.Path;
import java.util.Map;

/**
 * `tandem plan-cluster`: the paper's iso-power / iso-cost / iso-throughput provisioning studies. For each of the six
 * designs, the pool sizes that maximise throughput under the SLOs within a budget, or minimise cost or power at a
 * throughput, found by simulation (see {@link Provisioner} for how the search avoids a full grid).
 */
final class PlanClusterCommand {
    static final Map<String, String> VALUED = Args.options(
            "model", "llama2-70b|bloom-176b",
            "trace", "conv|code|FILE.csv: request sizes (Poisson arrivals are simulated)",
            "objective", "max-throughput|min-cost|min-power",
            "power-budget", "power units for max-throughput (DGX-A100 24.8, DGX-H100 44; 40 H100s = 1760)",
            "cost-budget", "cost units per hour for max-throughput (DGX-A100 2.21, DGX-H100 4.76)",
            "throughput", "requests/s to sustain under the SLOs, for min-cost and min-power",
            "duration", "simulated seconds of arrivals per evaluation (default 120, as the paper's 2-minute traces)",
            "seed", "seed of the arrivals (default 1)",
            "kv-bytes-per-token", "override the model's KV bytes per token (llama2-70b: 327680 with GQA; SplitwiseSim assumed 2621440)",
            "max-machines", "largest cluster searched for min-cost / min-power (default 400)",
            "perf-model", "profile CSV (default ../shared/reference/splitwise-sim/perf_model.csv)");
    static final Map<String, String> FLAGS = Args.options("json", "print the study as JSON", "help", "show options");

    int run(String[] argv) {
        Args args = new Args("plan-cluster", argv, VALUED, FLAGS);
        if (args.flag("help")) {
            return Help.print("plan-cluster --model NAME --trace conv|code|FILE --objective max-throughput|min-cost|min-power "
                    + "[--power-budget X | --cost-budget X | --throughput R]", VALUED, FLAGS);
        }
        String model = args.required("model"), trace = args.required("trace");
        Objective objective = Objective.parse(args.required("objective"));
        Path perf = args.has("perf-model") ? Path.of(args.required("perf-model")) : SimConfig.defaultPerfModel();
        Provisioner p = new Provisioner(SimulateCommand.model(args), perf, trace, args.number("duration", 120), args.longValue("seed", 1));
        PlanStudy study = PlanStudy.run(p, model, trace, objective, args.number("power-budget", 0), args.number("cost-budget", 0),
                args.number("throughput", 0), args.integer("max-machines", 400));
        System.out.print(args.flag("json") ? SimReport.json(study) + "\n" : study.markdown());
        return 0;
    }
}
