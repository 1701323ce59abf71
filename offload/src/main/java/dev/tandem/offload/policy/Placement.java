package dev.tandem.offload.policy;

import java.util.Arrays;

/**
 * An affine function of the six placement fractions the linear program chooses, x = (wg, wc, cg, cc, hg, hc): weights,
 * KV cache and hidden states on the GPU and on the CPU (the disk holds the rest, so wn = 1 - wg - wc and so on). The
 * cost model writes every I/O time, compute time and peak memory in this form, so the same terms evaluate a fixed
 * policy and become the LP's constraints.
 */
final class Placement {
    static final int WG = 0, WC = 1, CG = 2, CC = 3, HG = 4, HC = 5, N = 6;
    static final String[] NAMES = {"wg", "wc", "cg", "cc", "hg", "hc"};

    final double constant;
    private final double[] k;

    private Placement(double constant, double[] k) {
        this.constant = constant;
        this.k = k;
    }

    static Placement of(double constant) { return new Placement(constant, new double[N]); }

    /** The fraction x[i]. */
    static Placement var(int i) {
        double[] k = new double[N];
        k[i] = 1;
        return new Placement(0, k);
    }

    /** 1 - x[gpu]: the fraction not on the GPU. */
    static Placement offGpu(int gpu) { return of(1).minus(var(gpu)); }

    /** 1 - x[gpu] - x[gpu + 1]: the fraction on disk. */
    static Placement onDisk(int gpu) { return of(1).minus(var(gpu)).minus(var(gpu + 1)); }

    Placement plus(Placement o) {
        double[] r = k.clone();
        for (int i = 0; i < N; i++) r[i] += o.k[i];
        return new Placement(constant + o.constant, r);
    }

    Placement plus(double c) { return new Placement(constant + c, k); }

    Placement minus(Placement o) { return plus(o.times(-1)); }

    Placement times(double f) {
        double[] r = k.clone();
        for (int i = 0; i < N; i++) r[i] *= f;
        return new Placement(constant * f, r);
    }

    double coefficient(int i) { return k[i]; }

    double at(double[] x) {
        double v = constant;
        for (int i = 0; i < N; i++) v += k[i] * x[i];
        return v;
    }

    @Override
    public String toString() { return constant + " + " + Arrays.toString(k); }
}
