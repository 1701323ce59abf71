package dev.tandem.server.cli;

import dev.tandem.sim.Simulation;
import dev.tandem.sim.config.ConfigLoader;
import dev.tandem.sim.config.Design;
import dev.tandem.sim.config.ModelSpec;
import dev.tandem.sim.config.SimConfig;
import dev.tandem.sim.config.WorkloadSpec;
import dev.tandem.sim.engine.SimResult;
import dev.tandem.sim.report.SimReport;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * `tandem simulate`: one cluster simulation from a YAML/JSON config or from the flag form of the six
 * Splitwise designs; prints the Markdown summary (or one JSON object) and writes report.md, summary.json,
 * requests.csv and charts to --out. With --rates, a sweep over arrival rates with latency and SLO charts.
 */
final class SimulateCommand {
    static final Map<String, String> VALUED = Args.options(
            "config", "YAML or JSON cluster config (see sim/configs/); flags below override its workload",
            "design", "baseline-a100|baseline-h100|splitwise-aa|splitwise-hh|splitwise-ha|splitwise-hhcap",
            "machines", "machines of a baseline design",
            "prompt-machines", "prompt pool machines of a Splitwise design",
            "token-machines", "token pool machines of a Splitwise design",
            "model", "llama2-70b|bloom-176b (default llama2-70b)",
            "trace", "conv|code|FILE.csv (Azure format; default conv)",
            "rate", "Poisson arrivals per second, sizes drawn from the trace (default: replay the trace's own times)",
            "duration", "seconds of arrivals (default: the whole trace, or 120 with --rate)",
            "requests", "exactly N Poisson arrivals instead of --duration",
            "seed", "seed of the Poisson arrivals (default 1)",
            "kv-bytes-per-token", "override the model's KV bytes per token (llama2-70b: 327680 with GQA; SplitwiseSim assumed 2621440)",
            "perf-model", "profile CSV in SplitwiseSim's format (default ../shared/reference/splitwise-sim/perf_model.csv)",
            "cells", "router cells the machines are dealt to (default 1: one router over the whole cluster)",
            "rates", "comma-separated rates: a sweep, with latency-vs-load and SLO-vs-rate charts",
            "out", "output folder for report.md, summary.json, requests.csv, charts (default sim-out/<name>)");
    static final Map<String, String> FLAGS = Args.options("json", "print one JSON summary object instead of Markdown",
            "no-files", "write nothing to disk", "help", "show options");

    int run(String[] argv) throws Exception {
        Args args = new Args("simulate", argv, VALUED, FLAGS);
        if (args.flag("help")) {
            return Help.print("simulate (--config FILE | --design D (--machines N | --prompt-machines N --token-machines M)) "
                    + "[--model M] [--trace conv|code|FILE] [--rate R] [--duration S] [--seed N] [--json]", VALUED, FLAGS);
        }
        SimConfig config = config(args);
        Path out = Path.of(args.string("out", "sim-out/" + config.name()));
        boolean files = !args.flag("no-files");
        if (args.has("rates")) {
            double[] rates = Arrays.stream(args.required("rates").split(",")).mapToDouble(s -> parseRate(args, s)).toArray();
            List<SimResult.Summary> runs = new ArrayList<>();
            for (double r : rates) {
                WorkloadSpec w = config.workload();
                runs.add(Simulation.run(config.withWorkload(new WorkloadSpec(w.trace(), r, w.durationS() > 0 ? w.durationS() : 120,
                        w.requests(), w.seed()))).summary());
            }
            if (args.flag("json")) System.out.println(SimReport.json(runs));
            else System.out.print(files ? SimReport.sweep(out, rates, runs) : "");
            if (files) System.err.println("simulate: sweep written to " + out);
            return 0;
        }
        SimResult result = Simulation.run(config);
        System.out.print(args.flag("json") ? SimReport.json(result.summary()) + "\n" : SimReport.markdown(result.summary()));
        if (files) {
            SimReport.write(out, result);
            System.err.println("simulate: report, per-request CSV and charts written to " + out);
        }
        return 0;
    }

    private static double parseRate(Args args, String s) {
        try {
            double r = Double.parseDouble(s.strip());
            if (r > 0 && Double.isFinite(r)) return r;
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw args.usage("--rates expects positive numbers separated by commas, got '" + s + "'");
    }

    static SimConfig config(Args args) {
        SimConfig config;
        if (args.has("config")) {
            if (args.has("design")) throw args.usage("give --config or --design, not both");
            config = ConfigLoader.load(Path.of(args.required("config")));
        } else {
            Design d = Design.parse(args.required("design"));
            int np, nt;
            if (d.split()) {
                if (args.has("machines")) throw args.usage(d.flag() + " takes --prompt-machines N --token-machines M, not --machines");
                np = positive(args, "prompt-machines");
                nt = positive(args, "token-machines");
            } else {
                if (args.has("prompt-machines") || args.has("token-machines")) throw args.usage(d.flag() + " takes --machines N");
                np = positive(args, "machines");
                nt = 0;
            }
            Path perf = args.has("perf-model") ? Path.of(args.required("perf-model")) : SimConfig.defaultPerfModel();
            config = d.config(model(args), perf, np, nt,
                    new WorkloadSpec("conv", 0, 0, 0, 1));
        }
        WorkloadSpec w = config.workload();
        double rate = args.has("rate") ? args.number("rate", 0) : w.rate();
        double duration = args.has("duration") ? args.number("duration", 0) : w.durationS();
        long requests = args.longValue("requests", w.requests());
        if (rate > 0 && duration == 0 && requests == 0) duration = 120;
        config = config.withWorkload(new WorkloadSpec(args.string("trace", w.trace()), rate, duration, requests, args.longValue("seed", w.seed())));
        if (args.has("perf-model") && args.has("config")) {
            config = new SimConfig(config.name(), config.model(), Path.of(args.required("perf-model")), config.pools(), config.router(),
                    config.kvLink(), config.instance(), config.power(), config.workload());
        }
        if (args.has("kv-bytes-per-token")) {
            config = new SimConfig(config.name(), config.model().withKvBytesPerToken(args.longValue("kv-bytes-per-token", 0)), config.perfModel(),
                    config.pools(), config.router(), config.kvLink(), config.instance(), config.power(), config.workload());
        }
        if (args.has("cells")) config = config.withRouter(config.router().withCells(positive(args, "cells")));
        return config;
    }

    static ModelSpec model(Args args) {
        ModelSpec m = ModelSpec.byName(args.string("model", "llama2-70b"));
        return args.has("kv-bytes-per-token") ? m.withKvBytesPerToken(args.longValue("kv-bytes-per-token", 0)) : m;
    }

    private static int positive(Args args, String name) {
        int v = args.integer(name, 0);
        if (v < 1) throw args.usage("--" + name + " must be >= 1" + (args.has(name) ? ", got " + v : " (it is required)"));
        return v;
    }
}
