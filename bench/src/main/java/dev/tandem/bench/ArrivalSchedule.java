package dev.tandem.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * When each request of the load run is sent. Two kinds:
 * <ul>
 *   <li>replay: the trace's own arrival times (relative to its first row), sizes from the same row;</li>
 *   <li>Poisson: exponential inter-arrival gaps at a given rate from a seeded generator, the first request at
 *   time 0, sizes taken from the trace rows in order (wrapping around when the run outlasts the trace).</li>
 * </ul>
 * Both stop at {@code durationS} (requests at or after it are not sent) and at {@code maxRequests}; a Poisson
 * schedule with neither limit makes one request per trace row.
 */
public final class ArrivalSchedule {
    private ArrivalSchedule() {}

    /** @param durationS 0 or less for no limit; @param maxRequests 0 or less for no limit */
    public static List<PlannedRequest> replay(List<TraceRow> rows, double durationS, int maxRequests) {
        List<PlannedRequest> plan = new ArrayList<>();
        for (TraceRow r : rows) {
            if (maxRequests > 0 && plan.size() >= maxRequests) break;
            if (durationS > 0 && r.arrivalS() >= durationS) break;
            plan.add(new PlannedRequest(plan.size(), r.arrivalS(), r.promptTokens(), r.outputTokens(), r.line()));
        }
        return plan;
    }

    public static List<PlannedRequest> poisson(List<TraceRow> rows, double ratePerS, long seed, double durationS, int maxRequests) {
        if (!(ratePerS > 0)) throw new IllegalArgumentException("rate must be > 0, got " + ratePerS);
        if (rows.isEmpty()) throw new IllegalArgumentException("no trace rows to take sizes from");
        int limit = maxRequests > 0 ? maxRequests : durationS > 0 ? Integer.MAX_VALUE : rows.size();
        SplittableRandom random = new SplittableRandom(seed);
        List<PlannedRequest> plan = new ArrayList<>();
        double t = 0;
        while (plan.size() < limit && !(durationS > 0 && t >= durationS)) {
            TraceRow r = rows.get(plan.size() % rows.size());
            plan.add(new PlannedRequest(plan.size(), t, r.promptTokens(), r.outputTokens(), r.line()));
            t += exponential(random, ratePerS);
        }
        return plan;
    }

    /** Inverse-CDF sample; 1 - u is in (0, 1], so the log is finite. */
    static double exponential(SplittableRandom random, double rate) {
        return -Math.log(1.0 - random.nextDouble()) / rate;
    }
}
