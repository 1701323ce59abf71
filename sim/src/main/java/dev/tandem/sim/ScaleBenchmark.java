package dev.tandem.sim;

import dev.tandem.sim.config.Design;
import dev.tandem.sim.config.ModelSpec;
import dev.tandem.sim.config.SimConfig;
import dev.tandem.sim.config.WorkloadSpec;
import dev.tandem.sim.engine.SimResult;
import dev.tandem.sim.engine.Simulator;
import dev.tandem.sim.perf.PerfModel;
import dev.tandem.sim.workload.Workload;
import dev.tandem.sim.workload.Workloads;

import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.util.List;

/**
 * The scale benchmark ({@code tandem bench simulate}, a command, not a test): N requests with the conversation
 * trace's sizes, Poisson at 1.5 requests/s per machine (busy, not overloaded), over M machines of each design,
 * run one after the other in one JVM. Prints wall time split into workload generation, event loop and statistics,
 * the process's CPU time over the same span (all threads: a load-independent figure on a shared machine), simulated
 * requests per wall-second and per CPU-second, peak heap and the machine's load average.
 */
public final class ScaleBenchmark {
    private ScaleBenchmark() {}

    public static void run(long requests, int machines, int cells, List<String> designs, PrintStream out) {
        run(requests, machines, cells, designs, false, out);
    }

    /** @param compareSteps run each design twice in a row, with one event per decode iteration and with multi-iteration steps */
    public static void run(long requests, int machines, int cells, List<String> designs, boolean compareSteps, PrintStream out) {
        out.printf("%,d requests, %,d machines in %d router cell(s), %d cores, max heap %,d MiB, load average %.2f at start%n", requests, machines,
                cells, Runtime.getRuntime().availableProcessors(), Runtime.getRuntime().maxMemory() >> 20,
                ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
        out.println("| design | steps | requests | simulated s | events | workload s | event loop s | statistics s | total s | process CPU s | requests / wall-s | requests / CPU-s | P50 TTFT s | P50 TBT s | peak heap MiB | load avg |");
        out.println("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (String name : designs) {
            for (boolean multi : compareSteps ? new boolean[]{false, true} : new boolean[]{true}) {
                row(requests, machines, cells, name, multi, out);
            }
        }
    }

    private static void row(long requests, int machines, int cells, String name, boolean multi, PrintStream out) {
        Design d = Design.parse(name);
        WorkloadSpec w = new WorkloadSpec("conv", 1.5 * machines, 0, requests, 42);
        int p = d.split() ? machines * 2 / 5 : machines, t = d.split() ? machines - p : 0;
        SimConfig c = d.config(ModelSpec.LLAMA2_70B, SimConfig.defaultPerfModel(), p, t, w);
        c = c.withRouter(c.router().withCells(cells));
        PerfModel perf = Simulation.profile(c.perfModel()); // read once, outside the timed span
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) pool.resetPeakUsage();
        System.gc();
        var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        long cpu0 = os.getProcessCpuTime();
        long t0 = System.nanoTime();
        Workload wl = Workloads.build(w);
        double gen = (System.nanoTime() - t0) / 1e9;
        SimResult r = new Simulator(c, perf, wl, multi).run();
        double total = (System.nanoTime() - t0) / 1e9;
        double cpu = (os.getProcessCpuTime() - cpu0) / 1e9; // all threads (JIT, GC): what a quiet machine would need
        long peak = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == MemoryType.HEAP) peak += pool.getPeakUsage().getUsed();
        }
        var s = r.summary();
        out.printf("| %s | %s | %,d | %.0f | %,d | %.2f | %.2f | %.2f | %.2f | %.2f | %,.0f | %,.0f | %.3f | %.4f | %,d | %.2f |%n", name,
                multi ? "multi-iteration" : "one per iteration", s.requests(), s.makespanS(), s.events(), gen, s.wallS(),
                total - gen - s.wallS(), total, cpu, s.requests() / total, s.requests() / cpu, s.ttftS().p50(), s.tbtS().p50(), peak >> 20,
                ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    }
}
