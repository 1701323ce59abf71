package dev.tandem.sim.engine;

import java.util.Arrays;

/** How many instances serve each role over time, recorded at every pool change (for the pool-size chart). */
public final class PoolTimeline {
    private double[] times = new double[16];
    private int[][] counts = new int[16][];
    private int size;

    void record(double t, int[] roleCounts) {
        if (size == times.length) {
            times = Arrays.copyOf(times, size * 2);
            counts = Arrays.copyOf(counts, size * 2);
        }
        times[size] = t;
        counts[size++] = roleCounts.clone();
    }

    public int size() { return size; }

    public double time(int i) { return times[i]; }

    /** Instances in role {@code role} (a {@code Role} ordinal) from {@code time(i)} on. */
    public int count(int i, int role) { return counts[i][role]; }
}
