package dev.tandem.sim.perf;

import java.util.Arrays;

/**
 * A piecewise-linear curve through measured points, extrapolated linearly past both ends (as scipy's
 * {@code interp1d(..., fill_value="extrapolate")}, which SplitwiseSim uses). Never below {@code floor}:
 * extrapolating a nearly flat curve towards zero must not give a zero or negative iteration time.
 */
public final class Curve {
    private final double[] xs;
    private final double[] ys;
    private final double floor;

    /** @param xs strictly increasing; @param ys same length, at least 1 point */
    public Curve(double[] xs, double[] ys, double floor) {
        if (xs.length == 0 || xs.length != ys.length) throw new IllegalArgumentException("curve needs matching, non-empty x and y");
        for (int i = 1; i < xs.length; i++) {
            if (!(xs[i] > xs[i - 1])) throw new IllegalArgumentException("curve x values must increase: " + Arrays.toString(xs));
        }
        this.xs = xs.clone();
        this.ys = ys.clone();
        this.floor = floor;
    }

    /** The least value {@link #at} returns. */
    public double floor() { return floor; }

    public double at(double x) {
        int n = xs.length;
        if (n == 1) return Math.max(floor, ys[0]);
        int i;
        if (x <= xs[0]) i = 0;
        else if (x >= xs[n - 1]) i = n - 2;
        else {
            i = Arrays.binarySearch(xs, x);
            if (i >= 0) return Math.max(floor, ys[i]);
            i = -i - 2;
        }
        double y = ys[i] + (ys[i + 1] - ys[i]) * (x - xs[i]) / (xs[i + 1] - xs[i]);
        return Math.max(floor, y);
    }

    public double minX() { return xs[0]; }

    public double maxX() { return xs[xs.length - 1]; }

    /** Scaled copy: every y multiplied by {@code factor} (a power-capped GPU's slower prefill). */
    public Curve scaled(double factor) {
        double[] y = ys.clone();
        for (int i = 0; i < y.length; i++) y[i] *= factor;
        return new Curve(xs, y, floor * factor);
    }
}
