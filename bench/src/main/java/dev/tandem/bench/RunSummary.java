package dev.tandem.bench;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Everything one run found, as plain data: written to summary.json as it stands and rendered by
 * {@link MarkdownReport}. Latency percentiles are over completed requests; TBT is given two ways, per gap
 * between text chunks (what the SLOs use) and per request (its mean time between tokens).
 */
public record RunSummary(Config config, UnloadedBaseline unloaded, Counts requests, Latency latencySeconds,
                         Throughput throughput, SloReport slo, Map<String, Integer> errors, Series timeSeries) {

    public record Config(String url, String model, String trace, String arrivals, double ratePerS, long seed, long promptSeed,
                         double durationS, int maxRequests, double scaleTokens, int maxContext, int concurrency,
                         String tokenizer, int baselineRequests, int plannedRequests) {}

    /**
     * @param shortOutputs         completed with fewer tokens than asked (the server ignored ignore_eos?)
     * @param promptTokenMismatches server's usage.prompt_tokens differs from ours (tokenizer mismatch?)
     * @param usageMissing         completed without usage in the stream: tokens counted as text chunks
     */
    public record Counts(int issued, int completed, int failed, int shortOutputs, int promptTokenMismatches,
                         int usageMissing, double meanSendLateS, double maxSendLateS) {}

    public record Latency(LatencyStats ttft, LatencyStats tbt, LatencyStats tbtPerRequest, LatencyStats e2e) {}

    public record Throughput(double durationS, double requestsPerS, double outputTokensPerS, double inputTokensPerS,
                             long outputTokens, long inputTokens, int peakInFlight, double meanInFlight) {}

    public record Series(double[] outputTokensPerS, double[] inputTokensPerS, int[] completedPerS, int[] maxInFlight) {}

    public static RunSummary of(Config config, UnloadedBaseline base, List<RequestRecord> records, TimeSeries series) {
        List<RequestRecord> ok = records.stream().filter(RequestRecord::ok).toList();
        double first = records.stream().mapToDouble(RequestRecord::sentS).min().orElse(0);
        double last = records.stream().mapToDouble(RequestRecord::endS).max().orElse(0);
        double duration = last - first;
        long out = ok.stream().mapToLong(RequestRecord::outputTokens).sum();
        long in = ok.stream().mapToLong(RequestRecord::promptTokens).sum(); // what we built; a server that counts otherwise shows in promptTokenMismatches
        Counts counts = new Counts(records.size(), ok.size(), records.size() - ok.size(),
                (int) ok.stream().filter(r -> r.outputTokens() < r.maxTokens()).count(),
                (int) ok.stream().filter(r -> r.serverPromptTokens() >= 0 && r.serverPromptTokens() != r.promptTokens()).count(),
                (int) ok.stream().filter(r -> !r.usageReported()).count(),
                records.stream().mapToDouble(RequestRecord::lateS).average().orElse(0),
                records.stream().mapToDouble(RequestRecord::lateS).max().orElse(0));
        Latency latency = new Latency(
                LatencyStats.of(ok.stream().mapToDouble(RequestRecord::ttftS).toArray()),
                LatencyStats.of(ok.stream().flatMapToDouble(r -> Arrays.stream(r.chunkGapsS())).toArray()),
                LatencyStats.of(ok.stream().mapToDouble(RequestRecord::meanTbtS).toArray()),
                LatencyStats.of(ok.stream().mapToDouble(RequestRecord::e2eS).toArray()));
        Throughput throughput = new Throughput(duration, rate(ok.size(), duration), rate(out, duration), rate(in, duration),
                out, in, series.peakInFlight(), series.meanInFlight());
        return new RunSummary(config, base, counts, latency, throughput, SloReport.evaluate(base, records, duration),
                errors(records), new Series(series.outputTokensPerS(), series.inputTokensPerS(), series.completedPerS(), series.maxInFlight()));
    }

    private static double rate(double count, double seconds) {
        return seconds > 0 ? count / seconds : Double.NaN;
    }

    /** Error messages with how often each occurred; numbers inside messages are kept, so similar ones may stay apart. */
    private static Map<String, Integer> errors(List<RequestRecord> records) {
        Map<String, Integer> counts = new TreeMap<>();
        for (RequestRecord r : records) {
            if (r.ok()) continue;
            String e = r.error().length() > 160 ? r.error().substring(0, 160) + "..." : r.error();
            counts.merge(e, 1, Integer::sum);
        }
        Map<String, Integer> byCount = new LinkedHashMap<>();
        counts.entrySet().stream().sorted(Map.Entry.<String, Integer>comparingByValue().reversed()).limit(20)
                .forEach(en -> byCount.put(en.getKey(), en.getValue()));
        return byCount;
    }
}
