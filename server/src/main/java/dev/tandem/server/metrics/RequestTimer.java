package dev.tandem.server.metrics;

/**
 * Latencies of one request from the engine's token timestamps: time to first token from arrival, the gap before
 * every later token (inter-token latency and time per output token), and end-to-end latency at the end.
 * Used by the one thread that serves the request.
 */
public final class RequestTimer {
    private final ServerMetrics metrics;
    private final long arrival;
    private long last = -1; // -1 before the first token (a count of tokens would do; nanoTime is positive on HotSpot)

    RequestTimer(ServerMetrics metrics, long arrivalNanos) {
        this.metrics = metrics;
        this.arrival = arrivalNanos;
    }

    /**
     * @param scheduled      whether the engine said when the prompt first entered a step (remote gRPC workers do not)
     * @param scheduledNanos when it did, for the queue / prefill split of the first token
     */
    public void onToken(long nanos, boolean scheduled, long scheduledNanos) {
        String model = metrics.modelName();
        if (last < 0) {
            metrics.timeToFirstToken.labelValues(model).observe(seconds(nanos - arrival));
            if (scheduled) {
                metrics.queueTime.labelValues(model).observe(seconds(scheduledNanos - arrival));
                metrics.prefillTime.labelValues(model).observe(seconds(nanos - scheduledNanos));
            }
        } else {
            double gap = seconds(nanos - last);
            metrics.interTokenLatency.labelValues(model).observe(gap);
            metrics.timePerOutputToken.labelValues(model).observe(gap);
        }
        last = nanos;
    }

    /** {@code finishReason} is the API's finish_reason ("stop", "length", "abort"). */
    public void onFinish(String finishReason, long nanos) {
        metrics.e2eLatency.labelValues(metrics.modelName()).observe(seconds(nanos - arrival));
        metrics.requestSuccess.labelValues(metrics.modelName(), finishReason).inc();
    }

    private static double seconds(long nanos) { return Math.max(0, nanos) / 1e9; }
}
