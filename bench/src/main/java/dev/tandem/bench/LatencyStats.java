package dev.tandem.bench;

import java.util.Arrays;

/**
 * Count, mean and percentiles of a sample. Percentiles interpolate linearly between the two nearest ranks
 * (numpy's default), so p50 of {1, 2, 3, 4} is 2.5. NaN values are left out; an empty sample has NaN figures.
 */
public record LatencyStats(int count, double mean, double p50, double p90, double p99, double min, double max) {

    public static LatencyStats of(double[] values) {
        double[] v = Arrays.stream(values).filter(x -> !Double.isNaN(x)).sorted().toArray();
        if (v.length == 0) return new LatencyStats(0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
        double sum = 0;
        for (double x : v) sum += x;
        return new LatencyStats(v.length, sum / v.length, percentile(v, 50), percentile(v, 90), percentile(v, 99), v[0], v[v.length - 1]);
    }

    /** @param sorted ascending, no NaN; @param q in [0, 100] */
    public static double percentile(double[] sorted, double q) {
        if (sorted.length == 0) return Double.NaN;
        if (q < 0 || q > 100) throw new IllegalArgumentException("percentile " + q + " outside [0, 100]");
        double rank = q / 100 * (sorted.length - 1);
        int lo = (int) Math.floor(rank), hi = (int) Math.ceil(rank);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }

    /** The figure for a percentile level 50, 90 or 99. */
    public double at(int level) {
        return switch (level) {
            case 50 -> p50;
            case 90 -> p90;
            case 99 -> p99;
            default -> throw new IllegalArgumentException("no p" + level);
        };
    }
}
