package dev.tandem.sim.config;

/**
 * Where requests come from: a trace ("conv", "code" or a file in the Azure format) replayed at its own
 * arrival times (rate 0), or Poisson arrivals at {@code rate} per second with sizes drawn from the trace.
 *
 * @param durationS arrivals stop after this many seconds (0: the whole trace, or {@code requests} arrivals)
 * @param requests  when > 0, exactly this many requests (Poisson only)
 */
public record WorkloadSpec(String trace, double rate, double durationS, long requests, long seed) {
    public WorkloadSpec {
        if (trace == null || trace.isBlank()) throw new IllegalArgumentException("workload: trace is required (conv, code or a CSV file)");
        if (rate < 0 || durationS < 0 || requests < 0) throw new IllegalArgumentException("workload: rate, duration and requests must be >= 0");
        if (rate == 0 && requests > 0) throw new IllegalArgumentException("workload: requests needs a Poisson rate");
        if (rate > 0 && durationS == 0 && requests == 0) throw new IllegalArgumentException("workload: a Poisson rate needs a duration or a request count");
    }

    public WorkloadSpec withRate(double r) {
        return new WorkloadSpec(trace, r, durationS, requests, seed);
    }
}
