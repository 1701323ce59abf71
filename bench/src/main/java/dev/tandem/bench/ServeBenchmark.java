package dev.tandem.bench;

import dev.tandem.core.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code tandem bench serve}: a load generator for any OpenAI-compatible server (vLLM, llama.cpp, Tandem).
 *
 * <p>It reads an Azure 2023 trace, plans arrivals (the trace's own times with {@code --replay}, or Poisson at
 * {@code --rate}), builds prompts of exactly the trace's token counts under {@code --tokenizer}, and streams
 * {@code POST /v1/completions} with {@code ignore_eos} so each request generates exactly its trace's output.
 * First a few requests go one at a time to an idle server (after one warm-up) to measure unloaded TTFT, TBT and
 * E2E; then the schedule runs open loop, each request on its own virtual thread.
 *
 * <p>SLOs follow Splitwise: P50/P90/P99 of TTFT within 2x/3x/6x of unloaded, of TBT within 1.25x/1.5x/5x, of
 * E2E within 1.25x/1.5x/5x of the request's own unloaded E2E (see {@link SloReport}). Goodput counts a request as
 * good when it completed with TTFT &le; 3x unloaded TTFT, mean TBT &le; 1.5x unloaded TBT and E2E &le; 1.5x its
 * unloaded E2E (unloaded TTFT + (tokens - 1) x unloaded TBT), i.e. within every P90 limit; goodput is good
 * requests per second of run.
 *
 * <p>Writes summary.json, report.md, requests.csv, timeseries.csv and PNG charts into {@code --out}, and prints
 * the Markdown report to stdout. Exit codes: 0 done, 1 error (bad trace, unreachable server, every request
 * failed), 2 bad command line.
 */
public final class ServeBenchmark {
    private final BenchOptions options;
    private final PrintStream out, err;

    private ServeBenchmark(BenchOptions options, PrintStream out, PrintStream err) {
        this.options = options;
        this.out = out;
        this.err = err;
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    public static int run(String[] args) {
        return run(args, System.out, System.err);
    }

    public static int run(String[] args, PrintStream out, PrintStream err) {
        System.setProperty("java.awt.headless", "true"); // before any AWT class loads
        try {
            BenchOptions options = BenchOptions.parse(args);
            if (options == null) {
                out.print(BenchOptions.usage());
                return 0;
            }
            return new ServeBenchmark(options, out, err).execute();
        } catch (BenchOptions.UsageException e) {
            err.println("tandem bench serve: " + e.getMessage() + " (see --help)");
            return 2;
        } catch (BenchException e) {
            err.println("tandem bench serve: error: " + e.getMessage());
            return 1;
        }
    }

    private int execute() {
        List<TraceRow> rows = TraceReader.read(options.trace()).stream()
                .map(r -> r.scaled(options.scaleTokens(), options.maxContext())).toList();
        List<PlannedRequest> plan = options.replay()
                ? ArrivalSchedule.replay(rows, options.durationS(), options.maxRequests())
                : ArrivalSchedule.poisson(rows, options.rate(), options.seed(), options.durationS(), options.maxRequests());
        if (plan.isEmpty()) throw new BenchException("no request falls within --duration " + options.durationS() + " s");
        Path dir = options.out();
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new BenchException(dir + ": cannot create output folder: " + e.getMessage(), e);
        }
        Tokenizer tokenizer = TokenizerLoader.load(options.tokenizer());
        PromptSynthesizer prompts = new PromptSynthesizer(tokenizer);
        StreamingClient client = new StreamingClient(options.url(), options.apiKey(), Duration.ofMillis((long) (options.timeoutS() * 1000)));
        String model = options.model() != null ? options.model() : client.firstModel();
        LoadRunner runner = new LoadRunner(client, model, prompts, options.promptSeed(), options.concurrency(), options.durationS());

        UnloadedBaseline base = baseline(runner, plan, prompts);
        status(String.format(Locale.ROOT, "unloaded: TTFT %s ms, TBT %s ms, E2E %s ms (%d prompt / %d output tokens); sending %d requests",
                MarkdownReport.ms(base.ttftS()), MarkdownReport.ms(base.tbtS()), MarkdownReport.ms(base.e2eS()),
                base.promptTokens(), base.outputTokens(), plan.size()));

        // The server's own counters around the run (Prometheus text, where it has /metrics), kept beside the results.
        String metricsBefore = client.metricsText();
        SpecDecodeMetrics specBefore = SpecDecodeMetrics.parse(metricsBefore);
        LiveCounters counters = new LiveCounters();
        boolean terminal = ProgressBar.stderrIsTerminal();
        List<RequestRecord> records = runner.run(plan, counters,
                () -> new ProgressBar(err, counters, plan.size(), options.progress(), terminal));

        TimeSeries series = TimeSeries.of(records);
        RunSummary summary = RunSummary.of(config(model, plan.size()), base, records, series);
        List<String> charts = new ArrayList<>();
        try {
            charts.addAll(Charts.write(dir, records, series, base));
        } catch (IOException | RuntimeException | LinkageError e) {
            // Figures in the report still stand without pictures; say so rather than lose the run.
            err.println("tandem bench serve: warning: charts not written: " + e);
        }
        String metricsAfter = metricsBefore == null ? null : client.metricsText();
        String report = MarkdownReport.render(summary, charts)
                + SpecDecodeMetrics.section(specBefore, specBefore == null ? null : SpecDecodeMetrics.parse(metricsAfter));
        try {
            ResultFiles.summaryJson(dir.resolve("summary.json"), summary);
            ResultFiles.requestsCsv(dir.resolve("requests.csv"), records, base);
            ResultFiles.timeSeriesCsv(dir.resolve("timeseries.csv"), series);
            Files.writeString(dir.resolve("report.md"), report, StandardCharsets.UTF_8);
            if (metricsBefore != null && metricsAfter != null) {
                Files.writeString(dir.resolve("metrics-before.txt"), metricsBefore, StandardCharsets.UTF_8);
                Files.writeString(dir.resolve("metrics-after.txt"), metricsAfter, StandardCharsets.UTF_8);
            }
        } catch (IOException e) {
            throw new BenchException(dir + ": cannot write results: " + e.getMessage(), e);
        }
        out.print(report);
        out.flush();
        status("results in " + dir.toAbsolutePath().normalize());
        if (summary.requests().completed() == 0) {
            err.println("tandem bench serve: error: every one of " + records.size() + " requests failed (see " + dir.resolve("report.md") + ")");
            return 1;
        }
        return 0;
    }

    /**
     * One warm-up request (not counted: first-call costs such as JIT or graph capture), then the baseline requests,
     * at the run's median sizes; at least 2 output tokens so there is a gap to time. Then the unloaded TTFT at the
     * run's 10th and 90th percentile prompt lengths (two requests each, two output tokens), so that each request's
     * TTFT is judged against a prompt of its own length.
     */
    private UnloadedBaseline baseline(LoadRunner runner, List<PlannedRequest> plan, PromptSynthesizer prompts) {
        int output = Math.max(2, median(plan.stream().mapToInt(PlannedRequest::outputTokens).toArray()));
        int prompt = Math.max(prompts.minimumTokens(),
                Math.min(median(plan.stream().mapToInt(PlannedRequest::promptTokens).toArray()), options.maxContext() - output));
        status("warm-up and " + options.baselineRequests() + " unloaded baseline requests (" + prompt + " prompt / " + output + " output tokens)");
        checkBaseline(runner.sequential(1, prompt, output, -1));
        List<RequestRecord> measured = runner.sequential(options.baselineRequests(), prompt, output, -2);
        checkBaseline(measured);
        UnloadedBaseline base = UnloadedBaseline.of(measured, prompt, output);
        int[] sizes = plan.stream().mapToInt(PlannedRequest::promptTokens).sorted().toArray();
        java.util.Map<Integer, List<RequestRecord>> more = new java.util.TreeMap<>();
        for (int pct : options.ttftByLength() ? new int[] {10, 90} : new int[0]) {
            int p = Math.max(prompts.minimumTokens(), Math.min(sizes[(int) ((sizes.length - 1) * pct / 100.0)], options.maxContext() - 2));
            if (p == prompt || more.containsKey(p)) continue;
            // seeds well apart from the median's (-2, -3, ...: one per --baseline-requests): no two share a prompt start
            List<RequestRecord> rs = runner.sequential(2, p, 2, -1_000_000L - 1000L * pct);
            checkBaseline(rs);
            more.put(p, rs);
        }
        if (!more.isEmpty()) {
            base = base.withTtftAt(more);
            status("unloaded TTFT by prompt length: " + base.ttftCurve().stream()
                    .map(pt -> String.format(java.util.Locale.ROOT, "%d tokens %.1f ms", (int) pt[0], pt[1] * 1e3))
                    .collect(java.util.stream.Collectors.joining(", ")));
        }
        return base;
    }

    private void checkBaseline(List<RequestRecord> records) {
        for (RequestRecord r : records) {
            if (!r.ok()) {
                throw new BenchException("unloaded baseline request to " + options.url() + "/v1/completions failed: " + r.error());
            }
        }
    }

    private RunSummary.Config config(String model, int planned) {
        BenchOptions o = options;
        return new RunSummary.Config(o.url(), model, o.trace().toString(), o.replay() ? "replay" : "poisson", o.rate(), o.seed(), o.promptSeed(),
                o.durationS(), o.maxRequests(), o.scaleTokens(), o.maxContext(), o.concurrency(), o.tokenizer().toString(),
                o.baselineRequests(), planned);
    }

    private void status(String line) {
        err.println("tandem bench serve: " + line);
    }

    private static int median(int[] values) {
        double[] d = java.util.Arrays.stream(values).asDoubleStream().sorted().toArray();
        return (int) Math.round(LatencyStats.percentile(d, 50));
    }
}
