package dev.tandem.bench;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/** report.md: the run as Markdown tables, also printed to stdout at the end. */
public final class MarkdownReport {
    private MarkdownReport() {}

    public static String render(RunSummary s, List<String> charts) {
        StringBuilder md = new StringBuilder("# Serve benchmark\n\n");
        RunSummary.Config c = s.config();
        md.append("## Configuration\n\n| setting | value |\n|---|---|\n");
        row(md, "endpoint", c.url() + "/v1/completions");
        row(md, "model", c.model());
        row(md, "trace", c.trace());
        row(md, "arrivals", c.arrivals().equals("poisson") ? fmt("Poisson, %.3f req/s, seed %d", c.ratePerS(), c.seed()) : "trace replay");
        row(md, "limits", (c.durationS() > 0 ? fmt("%.1f s", c.durationS()) : "no duration") + ", "
                + (c.maxRequests() > 0 ? c.maxRequests() + " requests" : "no request cap") + fmt(" (%d planned)", c.plannedRequests()));
        row(md, "token sizes", fmt("x%s, prompt + output clamped to %d", trim(c.scaleTokens()), c.maxContext()));
        row(md, "concurrency", c.concurrency() > 0 ? "at most " + c.concurrency() + " in flight" : "open loop (no cap)");
        row(md, "tokenizer", c.tokenizer());
        row(md, "prompts", fmt("random words, prompt seed %d", c.promptSeed()));

        UnloadedBaseline u = s.unloaded();
        md.append("\n## Unloaded baseline\n\n")
                .append(fmt("%d requests one at a time, %d prompt / %d output tokens (the run's median sizes).%n%n", u.requests(), u.promptTokens(), u.outputTokens()))
                .append("| TTFT (ms) | mean TBT (ms) | E2E (ms) |\n|---:|---:|---:|\n")
                .append(fmt("| %s | %s | %s |%n", ms(u.ttftS()), ms(u.tbtS()), ms(u.e2eS())));
        if (!u.ttftCurve().isEmpty()) {
            md.append("\nUnloaded TTFT by prompt length (2 requests each beside the median's; a request's TTFT and E2E limits use "
                    + "its own length, interpolated):");
            for (double[] pt : u.ttftCurve()) md.append(fmt(" %d tokens %s ms;", (int) pt[0], ms(pt[1])));
            md.append("\n");
        }

        RunSummary.Counts n = s.requests();
        md.append("\n## Requests\n\n| issued | completed | failed | fewer tokens than asked | prompt-token count differs from server | no usage in stream | send late, mean / max (ms) |\n")
                .append("|---:|---:|---:|---:|---:|---:|---:|\n")
                .append(fmt("| %d | %d | %d | %d | %d | %d | %s / %s |%n", n.issued(), n.completed(), n.failed(), n.shortOutputs(),
                        n.promptTokenMismatches(), n.usageMissing(), ms(n.meanSendLateS()), ms(n.maxSendLateS())));

        RunSummary.Latency l = s.latencySeconds();
        md.append("\n## Latency (ms, completed requests)\n\n| metric | samples | mean | p50 | p90 | p99 | max |\n|---|---:|---:|---:|---:|---:|---:|\n");
        latency(md, "TTFT", l.ttft());
        latency(md, "TBT (gaps between chunks)", l.tbt());
        latency(md, "TBT (mean per request)", l.tbtPerRequest());
        latency(md, "E2E", l.e2e());

        RunSummary.Throughput t = s.throughput();
        md.append("\n## Throughput\n\n| duration (s) | requests/s | output tokens/s | input tokens/s | output tokens | input tokens | peak in flight | mean in flight |\n")
                .append("|---:|---:|---:|---:|---:|---:|---:|---:|\n")
                .append(fmt("| %.2f | %.3f | %.1f | %.1f | %d | %d | %d | %.1f |%n", t.durationS(), t.requestsPerS(), t.outputTokensPerS(),
                        t.inputTokensPerS(), t.outputTokens(), t.inputTokens(), t.peakInFlight(), t.meanInFlight()));

        SloReport slo = s.slo();
        md.append("\n## SLO attainment (Splitwise: relative to unloaded)\n\n")
                .append("| metric | level | limit | unloaded (ms) | measured (x unloaded) | within limit | status |\n|---|---|---:|---:|---:|---:|---|\n");
        for (SloReport.Result r : slo.results()) {
            md.append(fmt("| %s | P%d | %sx | %s | %s | %s | %s |%n", r.metric(), r.level(), trim(r.multiple()), ms(r.unloadedS()),
                    Double.isNaN(r.measuredRatio()) ? "-" : fmt("%.2fx", r.measuredRatio()), pct(r.attainment()), r.status()));
        }
        md.append("\nA Pxx SLO is met when at least xx% of samples are within the limit (failed requests count as outside). ")
                .append("E2E is compared per request with its own unloaded E2E, unloaded TTFT + (tokens - 1) x unloaded TBT; ")
                .append("the unloaded column shows the median-size request's E2E. TBT samples are gaps between text chunks.\n");

        md.append("\n## Goodput\n\n| good requests | of issued | goodput (requests/s) |\n|---:|---:|---:|\n")
                .append(fmt("| %d | %s | %.3f |%n", slo.goodRequests(), pct(slo.goodFraction()), slo.goodputRps()))
                .append("\nA request is good when: ").append(slo.goodRule()).append(". Goodput = good requests / run duration.\n");

        if (!s.errors().isEmpty()) {
            md.append("\n## Errors\n\n| count | error |\n|---:|---|\n");
            for (Map.Entry<String, Integer> e : s.errors().entrySet()) {
                md.append(fmt("| %d | %s |%n", e.getValue(), e.getKey().replace("|", "\\|")));
            }
        }
        md.append("\n## Files\n\nsummary.json, requests.csv, timeseries.csv");
        for (String chart : charts) md.append(", ").append(chart);
        md.append('\n');
        return md.toString();
    }

    private static void row(StringBuilder md, String k, String v) {
        md.append("| ").append(k).append(" | ").append(v == null ? "-" : v.replace("|", "\\|")).append(" |\n");
    }

    private static void latency(StringBuilder md, String name, LatencyStats s) {
        md.append(fmt("| %s | %d | %s | %s | %s | %s | %s |%n", name, s.count(), ms(s.mean()), ms(s.p50()), ms(s.p90()), ms(s.p99()), ms(s.max())));
    }

    static String ms(double seconds) {
        return Double.isNaN(seconds) ? "-" : fmt("%.1f", seconds * 1000);
    }

    private static String pct(double fraction) {
        return Double.isNaN(fraction) ? "-" : fmt("%.1f%%", fraction * 100);
    }

    private static String trim(double d) {
        return d == Math.rint(d) ? String.valueOf((long) d) : String.valueOf(d);
    }

    private static String fmt(String f, Object... args) {
        return String.format(Locale.ROOT, f, args);
    }
}
