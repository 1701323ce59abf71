package dev.tandem.server.metrics;

import dev.tandem.engine.EngineStats;
import dev.tandem.engine.GenerationService;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

import java.io.IOException;
import java.io.OutputStream;
import java.util.function.Supplier;
import java.util.function.ToDoubleFunction;

/**
 * /metrics in Prometheus text format under vLLM's names, so dashboards and load generators built for vLLM read
 * Tandem unchanged. Gauges and counters are read from the engine's stats at scrape time; latency histograms are
 * recorded per request by the server, which sees when each token left the engine.
 */
public final class ServerMetrics {
    private static final String MODEL = "model_name";

    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final PrometheusTextFormatWriter writer = PrometheusTextFormatWriter.create();
    private final String modelName;
    final Histogram timeToFirstToken;
    final Histogram queueTime;
    final Histogram prefillTime;
    final Histogram interTokenLatency;
    final Histogram timePerOutputToken;
    final Histogram e2eLatency;
    final Counter requestSuccess;

    public ServerMetrics(String modelName, Supplier<EngineStats> stats) {
        this(modelName, stats, java.util.List::of);
    }

    /** With the service's extra figures (a cluster's pools and KV transfers), read at scrape time by name. */
    public ServerMetrics(String modelName, Supplier<EngineStats> stats, Supplier<java.util.List<GenerationService.Metric>> extra) {
        this.modelName = modelName;
        timeToFirstToken = histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
                0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0);
        double[] phase = {0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0};
        // From arrival at the server (parsed, tokenized, routed, waiting) to the first step holding the prompt, then to
        // its first token: where a time to first token goes.
        queueTime = histogram("vllm:request_queue_time_seconds", "Histogram of time from the request's arrival at the server to the first step that holds its prompt, in seconds.", phase);
        prefillTime = histogram("vllm:request_prefill_time_seconds", "Histogram of time from the first step that holds the request's prompt to its first token, in seconds.", phase);
        double[] perToken = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
        interTokenLatency = histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", perToken);
        timePerOutputToken = histogram("vllm:time_per_output_token_seconds", "Histogram of time per output token in seconds.", perToken);
        e2eLatency = histogram("vllm:e2e_request_latency_seconds", "Histogram of end to end request latency in seconds.",
                0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0);
        requestSuccess = Counter.builder().name("vllm:request_success_total").help("Count of successfully processed requests.")
                .labelNames(MODEL, "finished_reason").register(registry);

        gauge("vllm:num_requests_running", "Number of requests in model execution batches.", stats, EngineStats::running);
        gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", stats, EngineStats::waiting);
        gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", stats, EngineStats::kvCacheUsage);
        counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.", stats, EngineStats::promptTokens);
        counter("vllm:generation_tokens_total", "Number of generation tokens processed.", stats, EngineStats::generationTokens);
        counter("vllm:num_preemptions_total", "Cumulative number of preemption from the engine.", stats, EngineStats::preemptions);
        counter("vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.", stats, EngineStats::prefixCacheQueries);
        counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.", stats, EngineStats::prefixCacheHits);
        for (GenerationService.Metric m : extra.get()) {
            ToDoubleFunction<java.util.List<GenerationService.Metric>> value = list -> list.stream()
                    .filter(x -> x.name().equals(m.name())).mapToDouble(GenerationService.Metric::value).findFirst().orElse(0);
            if (m.counter()) counter(m.name(), m.help(), extra, value);
            else gauge(m.name(), m.help(), extra, value);
        }
        if (stats.get().speculative().enabled()) speculative(stats);
    }

    /** Speculative decoding: vLLM v1's spec_decode counters, v0's acceptance-rate gauge, and Tandem's own timings. */
    private void speculative(Supplier<EngineStats> stats) {
        counter("vllm:spec_decode_num_drafts_total", "Number of spec decoding drafts.", stats, s -> s.speculative().drafts());
        counter("vllm:spec_decode_num_draft_tokens_total", "Number of draft tokens.", stats, s -> s.speculative().draftTokens());
        counter("vllm:spec_decode_num_accepted_tokens_total", "Number of accepted tokens.", stats, s -> s.speculative().acceptedTokens());
        CounterWithCallback.builder().name("vllm:spec_decode_num_accepted_tokens_per_pos").help("Accepted tokens per draft position.")
                .labelNames(MODEL, "position").callback(cb -> {
                    long[] accepted = stats.get().speculative().acceptedPerPosition();
                    for (int i = 0; i < accepted.length; i++) cb.call(accepted[i], modelName, String.valueOf(i));
                }).register(registry);
        gauge("vllm:spec_decode_draft_acceptance_rate", "Speculative token acceptance rate.", stats, s -> s.speculative().acceptanceRate());
        gauge("tandem:spec_decode_mean_acceptance_length", "Tokens per verification: accepted drafts plus the corrected or bonus token.",
                stats, s -> s.speculative().meanAcceptanceLength());
        counter("tandem:spec_decode_draft_seconds_total", "Time spent drafting.", stats, s -> s.speculative().draftNanos() / 1e9);
        counter("tandem:spec_decode_verify_seconds_total", "Time of the target passes that verified drafts.", stats,
                s -> s.speculative().verifyNanos() / 1e9);
    }

    /** Starts timing a request that arrived at {@code arrivalNanos} (System.nanoTime). */
    public RequestTimer startRequest(long arrivalNanos) { return new RequestTimer(this, arrivalNanos); }

    public String contentType() { return writer.getContentType(); }

    public void write(OutputStream out) throws IOException { writer.write(out, registry.scrape()); }

    String modelName() { return modelName; }

    private Histogram histogram(String name, String help, double... bounds) {
        return Histogram.builder().name(name).help(help).classicOnly().classicUpperBounds(bounds).labelNames(MODEL).register(registry);
    }

    private <T> void gauge(String name, String help, Supplier<T> stats, ToDoubleFunction<T> value) {
        GaugeWithCallback.builder().name(name).help(help).labelNames(MODEL)
                .callback(cb -> cb.call(value.applyAsDouble(stats.get()), modelName)).register(registry);
    }

    private <T> void counter(String name, String help, Supplier<T> stats, ToDoubleFunction<T> value) {
        CounterWithCallback.builder().name(name).help(help).labelNames(MODEL)
                .callback(cb -> cb.call(value.applyAsDouble(stats.get()), modelName)).register(registry);
    }
}
