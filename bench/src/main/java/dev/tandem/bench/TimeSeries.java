package dev.tandem.bench;

import java.util.Arrays;
import java.util.List;

/**
 * The load run over time, in one-second buckets from the run's start: output and input tokens per second,
 * completions per second, and the most requests in flight during each second; plus the exact in-flight step
 * function (its change times and levels) for the chart.
 *
 * <p>Output tokens are spread evenly over a request's text chunks (a chunk may carry several); a request's
 * prompt tokens count when its first token arrives, the moment its prefill is known to be done.
 */
public record TimeSeries(double[] outputTokensPerS, double[] inputTokensPerS, int[] completedPerS, int[] maxInFlight,
                         double[] inFlightTimesS, int[] inFlightLevels) {

    public static TimeSeries of(List<RequestRecord> records) {
        double end = records.stream().mapToDouble(RequestRecord::endS).max().orElse(0);
        int buckets = Math.max(1, (int) Math.ceil(end + 1e-9));
        double[] out = new double[buckets], in = new double[buckets];
        int[] completed = new int[buckets];
        for (RequestRecord r : records) {
            double[] chunks = r.chunkTimesS();
            if (chunks.length > 0) {
                double perChunk = r.outputTokens() / (double) chunks.length;
                for (double t : chunks) out[bucket(r.sentS() + t, buckets)] += perChunk;
                if (r.ok()) in[bucket(r.sentS() + chunks[0], buckets)] += r.promptTokens();
            }
            if (r.ok()) completed[bucket(r.endS(), buckets)]++;
        }
        // In flight: +1 at send, -1 at end; ends sort before sends at the same instant.
        double[][] events = new double[records.size() * 2][];
        int k = 0;
        for (RequestRecord r : records) {
            events[k++] = new double[] {r.sentS(), +1};
            events[k++] = new double[] {r.endS(), -1};
        }
        Arrays.sort(events, (a, b) -> a[0] != b[0] ? Double.compare(a[0], b[0]) : Double.compare(a[1], b[1]));
        double[] times = new double[events.length + 1];
        int[] levels = new int[events.length + 1];
        int[] maxInFlight = new int[buckets];
        int level = 0;
        for (int i = 0; i < events.length; i++) {
            level += (int) events[i][1];
            times[i + 1] = events[i][0];
            levels[i + 1] = level;
            int b = bucket(events[i][0], buckets);
            maxInFlight[b] = Math.max(maxInFlight[b], level);
        }
        // A second with no event still has the level carried in from before it.
        int carried = 0, e = 0;
        for (int b = 0; b < buckets; b++) {
            while (e < events.length && events[e][0] < b) carried = levels[++e];
            maxInFlight[b] = Math.max(maxInFlight[b], carried);
        }
        return new TimeSeries(out, in, completed, maxInFlight, times, levels);
    }

    private static int bucket(double t, int buckets) {
        return Math.clamp((long) Math.floor(t), 0, buckets - 1);
    }

    public int peakInFlight() {
        return Arrays.stream(inFlightLevels).max().orElse(0);
    }

    /** Time-weighted mean of requests in flight from the first send to the last completion. */
    public double meanInFlight() {
        double area = 0, span = inFlightTimesS.length > 1 ? inFlightTimesS[inFlightTimesS.length - 1] - inFlightTimesS[1] : 0;
        for (int i = 1; i + 1 < inFlightTimesS.length; i++) area += inFlightLevels[i] * (inFlightTimesS[i + 1] - inFlightTimesS[i]);
        return span > 0 ? area / span : 0;
    }
}
