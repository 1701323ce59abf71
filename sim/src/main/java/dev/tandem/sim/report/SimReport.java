package dev.tandem.sim.report;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.tandem.sim.engine.SimResult;
import dev.tandem.sim.engine.SimResult.Percentiles;
import dev.tandem.sim.engine.SimResult.Slo;
import dev.tandem.sim.engine.SimResult.Summary;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/** Writes a run's results: report.md, summary.json, requests.csv and the pool-size chart. */
public final class SimReport {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private SimReport() {}

    public static String json(Object summary) {
        try {
            return JSON.writeValueAsString(summary);
        } catch (IOException e) {
            throw new IllegalStateException("cannot write JSON: " + e.getMessage(), e);
        }
    }

    public static void write(Path dir, SimResult r) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("summary.json"), json(r.summary()) + "\n");
        requestsCsv(dir.resolve("requests.csv"), r);
        String chart = SimCharts.poolSizes(dir, r.pools(), r.summary().makespanS());
        Files.writeString(dir.resolve("report.md"), markdown(r.summary()) + "\n![pool sizes](" + chart + ")\n");
    }

    static void requestsCsv(Path file, SimResult r) throws IOException {
        try (BufferedWriter out = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            out.write("request,prompt_tokens,output_tokens,prompt_instance,token_instance,ttft_s,tbt_s,e2e_s,preemptions\n");
            StringBuilder sb = new StringBuilder(128);
            for (int i = 0; i < r.ttftS().length; i++) {
                sb.setLength(0);
                sb.append(i).append(',').append(r.promptTokens()[i]).append(',').append(r.outputTokens()[i]).append(',')
                        .append(r.promptInstance()[i]).append(',').append(r.tokenInstance()[i]).append(',')
                        .append(num(r.ttftS()[i])).append(',').append(num(r.tbtS()[i])).append(',').append(num(r.e2eS()[i]))
                        .append(',').append(r.preemptions()[i]).append('\n');
                out.write(sb.toString());
            }
        }
    }

    private static String num(double v) {
        return Double.isNaN(v) ? "" : String.format(Locale.ROOT, "%.6f", v);
    }

    /** The summary as a Markdown report (also what {@code tandem simulate} prints). */
    public static String markdown(Summary s) {
        StringBuilder b = new StringBuilder();
        b.append("# Simulation: ").append(s.name()).append("\n\n");
        b.append(String.format(Locale.ROOT, "- design `%s`, model %s, %d machines (%d instances), cost %.2f/h, power %.1f units (%,.0f W provisioned)%n",
                s.design(), s.model(), s.machines(), s.instances(), s.costPerHour(), s.powerUnits(), s.provisionedWatts()));
        b.append("- workload: ").append(s.workload()).append('\n');
        b.append(String.format(Locale.ROOT, "- %d requests, %d completed, %d rejected (larger than any instance's KV memory), %d never placed; %d preemptions%n",
                s.requests(), s.completed(), s.rejected(), s.unplaced(), s.preemptions()));
        b.append(String.format(Locale.ROOT, "- makespan %.1f s; offered %.2f requests/s; throughput %.2f requests/s (completed while arrivals lasted), %.0f output tokens/s over the makespan%n",
                s.makespanS(), s.offeredRps(), s.throughputRps(), s.outputTokensPerS()));
        b.append(String.format(Locale.ROOT, "- energy %.2f kWh (mean %.0f W); simulated in %.2f s wall (%,.0f requests/s, %,d events)%n%n",
                s.energyKWh(), s.meanWatts(), s.wallS(), s.requestsPerWallS(), s.events()));
        b.append("| metric | P50 | P90 | P99 | mean | slowdown P50 | P90 | P99 |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
        row(b, "TTFT (s)", s.ttftS(), s.ttftSlowdown());
        row(b, "TBT (s)", s.tbtS(), s.tbtSlowdown());
        row(b, "E2E (s)", s.e2eS(), s.e2eSlowdown());
        b.append("\nSLOs (slowdown against the request alone on a DGX-A100; Splitwise's table):\n\n");
        b.append("| SLO | limit | slowdown | attainment | |\n|---|---:|---:|---:|---|\n");
        for (Slo slo : s.slos()) {
            b.append(String.format(Locale.ROOT, "| %s P%d | %.2fx | %.2fx | %.1f%% | %s |%n", slo.metric(), slo.level(), slo.limit(),
                    slo.slowdown(), 100 * slo.attainment(), slo.met() ? "met" : "**missed**"));
        }
        b.append("\nall SLOs met: ").append(s.slosMet() ? "yes" : "no").append("\n\n");
        b.append("| pool | role | hardware | machines | instances | busy | prompt-only | token-only | mixed |\n|---|---|---|---:|---:|---:|---:|---:|---:|\n");
        for (var p : s.pools()) {
            b.append(String.format(Locale.ROOT, "| %s | %s | %s | %d | %d | %.1f%% | %.1f%% | %.1f%% | %.1f%% |%n", p.name(), p.role(), p.hardware(),
                    p.machines(), p.instances(), 100 * p.busyFraction(), 100 * p.promptFraction(), 100 * p.tokenFraction(), 100 * p.mixedFraction()));
        }
        return b.toString();
    }

    private static void row(StringBuilder b, String name, Percentiles v, Percentiles slow) {
        b.append(String.format(Locale.ROOT, "| %s | %.4f | %.4f | %.4f | %.4f | %.2fx | %.2fx | %.2fx |%n", name, v.p50(), v.p90(), v.p99(), v.mean(),
                slow.p50(), slow.p90(), slow.p99()));
    }

    /** A rate sweep: one row per rate, plus the latency-vs-load and SLO-vs-rate charts. */
    public static String sweep(Path dir, double[] rates, List<Summary> runs) throws IOException {
        Files.createDirectories(dir);
        StringBuilder csv = new StringBuilder("rate,throughput_rps,ttft_p50,ttft_p90,ttft_p99,tbt_p50,tbt_p90,tbt_p99,e2e_p50,e2e_p90,e2e_p99,slos_met");
        for (String m : SimResult.METRICS) for (int l : SimResult.LEVELS) csv.append(',').append(m.toLowerCase(Locale.ROOT)).append("_p").append(l).append("_attainment");
        csv.append('\n');
        StringBuilder md = new StringBuilder("| rate (req/s) | throughput | TTFT P50 / P90 / P99 (s) | TBT P50 / P90 / P99 (s) | SLOs met |\n|---:|---:|---|---|---|\n");
        for (int i = 0; i < rates.length; i++) {
            Summary s = runs.get(i);
            csv.append(String.format(Locale.ROOT, "%.4f,%.4f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%b", rates[i], s.throughputRps(),
                    s.ttftS().p50(), s.ttftS().p90(), s.ttftS().p99(), s.tbtS().p50(), s.tbtS().p90(), s.tbtS().p99(),
                    s.e2eS().p50(), s.e2eS().p90(), s.e2eS().p99(), s.slosMet()));
            for (Slo slo : s.slos()) csv.append(String.format(Locale.ROOT, ",%.5f", slo.attainment()));
            csv.append('\n');
            md.append(String.format(Locale.ROOT, "| %.2f | %.2f | %.3f / %.3f / %.3f | %.4f / %.4f / %.4f | %s |%n", rates[i], s.throughputRps(),
                    s.ttftS().p50(), s.ttftS().p90(), s.ttftS().p99(), s.tbtS().p50(), s.tbtS().p90(), s.tbtS().p99(), s.slosMet() ? "yes" : "no"));
        }
        Files.writeString(dir.resolve("sweep.csv"), csv);
        String a = SimCharts.latencyVsLoad(dir, rates, runs), b = SimCharts.sloVsRate(dir, rates, runs);
        md.append("\n![latency vs load](").append(a).append(")\n![SLO attainment vs rate](").append(b).append(")\n");
        Files.writeString(dir.resolve("sweep.md"), md);
        return md.toString();
    }
}
