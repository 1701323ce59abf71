package dev.tandem.sim;

import dev.tandem.sim.config.Design;
import dev.tandem.sim.config.ModelSpec;
import dev.tandem.sim.config.SimConfig;
import dev.tandem.sim.config.WorkloadSpec;
import dev.tandem.sim.engine.SimResult;
import dev.tandem.sim.workload.Workload;
import dev.tandem.sim.workload.Workloads;

/**
 * The scale benchmark (a command, not a test): N requests (default 1,000,000) of the conversation trace's
 * sizes, Poisson at a rate that loads the cluster, over M machines (default 1,000) of each design given.
 * Prints simulated requests per wall-second and the heap in use.
 *
 * <pre>java -Xmx4g -cp ... dev.tandem.sim.ScaleBenchmark [requests] [machines] [router cells] [design...]</pre>
 */
public final class ScaleBenchmark {
    private ScaleBenchmark() {}

    public static void main(String[] args) {
        long requests = args.length > 0 ? Long.parseLong(args[0]) : 1_000_000;
        int machines = args.length > 1 ? Integer.parseInt(args[1]) : 1000;
        int cells = args.length > 2 ? Integer.parseInt(args[2]) : Math.max(1, machines / 100);
        String[] designs = args.length > 3 ? java.util.Arrays.copyOfRange(args, 3, args.length) : new String[]{"splitwise-hh", "baseline-h100"};
        System.out.printf("%d requests, %d machines in %d router cells, %d cores, max heap %d MiB, load average %.2f%n", requests, machines, cells,
                Runtime.getRuntime().availableProcessors(), Runtime.getRuntime().maxMemory() >> 20,
                java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
        for (String name : designs) {
            Design d = Design.parse(name);
            // about 1.5 requests/s per machine keeps a conversation-trace cluster busy without overload
            double rate = 1.5 * machines;
            WorkloadSpec w = new WorkloadSpec("conv", rate, 0, requests, 42);
            int p = d.split() ? machines * 2 / 5 : machines, t = d.split() ? machines - p : 0;
            SimConfig c = d.config(ModelSpec.LLAMA2_70B, SimConfig.defaultPerfModel(), p, t, w);
            c = c.withRouter(c.router().withCells(cells));
            long t0 = System.nanoTime();
            Workload wl = Workloads.build(w);
            double gen = (System.nanoTime() - t0) / 1e9;
            SimResult r = Simulation.run(c, wl);
            double total = (System.nanoTime() - t0) / 1e9;
            Runtime rt = Runtime.getRuntime();
            var s = r.summary();
            System.out.printf("%-14s %,d requests (%,d done) on %d machines: simulated %.0f s in %.2f s wall (workload %.2f s, total %.2f s)"
                            + " = %,.0f requests/s, %,d events; P50 TTFT %.3f s, P50 TBT %.4f s; heap used %d MiB%n",
                    name, s.requests(), s.completed(), s.machines(), s.makespanS(), s.wallS(), gen, total, s.requestsPerWallS(), s.events(),
                    s.ttftS().p50(), s.tbtS().p50(), (rt.totalMemory() - rt.freeMemory()) >> 20);
        }
    }
}
