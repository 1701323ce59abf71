package dev.tandem.sim.workload;

/**
 * The requests of one run as parallel primitive arrays (arrival seconds, prompt and output tokens),
 * sorted by arrival: a million requests cost 16 MB, not a million objects.
 */
public record Workload(String description, double[] arrivalS, int[] promptTokens, int[] outputTokens) {
    public Workload {
        if (arrivalS.length != promptTokens.length || arrivalS.length != outputTokens.length) {
            throw new IllegalArgumentException("workload arrays differ in length");
        }
    }

    public int size() {
        return arrivalS.length;
    }

    /** Seconds from the first to the last arrival. */
    public double spanS() {
        return size() == 0 ? 0 : arrivalS[size() - 1] - arrivalS[0];
    }
}
