package dev.tandem.server.cli;

import dev.tandem.sim.ScaleBenchmark;

import java.util.Arrays;
import java.util.Map;

/** `tandem bench simulate`: the simulator's scale benchmark (requests per wall-second at data-center size). */
final class SimBenchCommand {
    static final Map<String, String> VALUED = Args.options(
            "requests", "requests to simulate (default 1000000)",
            "machines", "machines in the cluster (default 1000)",
            "cells", "router cells (default 1: one router over the whole cluster)",
            "designs", "comma-separated designs, run one after the other (default splitwise-hh,baseline-h100,splitwise-aa)");
    static final Map<String, String> FLAGS = Args.options(
            "compare-steps", "run each design twice, one event per decode iteration then multi-iteration steps",
            "help", "show options");

    int run(String[] argv) {
        Args args = new Args("bench simulate", argv, VALUED, FLAGS);
        if (args.flag("help")) return Help.print("bench simulate [--requests 1000000] [--machines 1000] [--cells 1]", VALUED, FLAGS);
        long requests = args.longValue("requests", 1_000_000);
        int machines = args.integer("machines", 1000);
        int cells = args.integer("cells", 1);
        if (requests < 1 || machines < 2 || cells < 1) throw args.usage("--requests >= 1, --machines >= 2 and --cells >= 1");
        ScaleBenchmark.run(requests, machines, cells,
                Arrays.asList(args.string("designs", "splitwise-hh,baseline-h100,splitwise-aa").split(",")), args.flag("compare-steps"), System.out);
        return 0;
    }
}
