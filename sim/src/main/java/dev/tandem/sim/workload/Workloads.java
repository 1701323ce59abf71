package dev.tandem.sim.workload;

import dev.tandem.bench.TraceReader;
import dev.tandem.bench.TraceRow;
import dev.tandem.sim.config.SimConfig;
import dev.tandem.sim.config.WorkloadSpec;

import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;

/** Builds a {@link Workload} from a {@link WorkloadSpec}: trace replay, or seeded Poisson arrivals with trace sizes. */
public final class Workloads {
    private static final ConcurrentHashMap<Path, List<TraceRow>> TRACES = new ConcurrentHashMap<>();

    private Workloads() {}

    /** "conv" and "code" name the Azure 2023 traces in ../shared/traces; anything else is a file. */
    public static Path traceFile(String trace) {
        return switch (trace) {
            case "conv" -> SimConfig.sharedDir().resolve("traces/AzureLLMInferenceTrace_conv.csv");
            case "code" -> SimConfig.sharedDir().resolve("traces/AzureLLMInferenceTrace_code.csv");
            default -> Path.of(trace);
        };
    }

    /** Trace rows, read once per process (the provisioner runs hundreds of simulations on one trace). */
    public static List<TraceRow> rows(String trace) {
        Path file = traceFile(trace).toAbsolutePath().normalize();
        return TRACES.computeIfAbsent(file, f -> {
            try {
                return TraceReader.read(f);
            } catch (RuntimeException e) {
                throw new IllegalArgumentException(e.getMessage(), e);
            }
        });
    }

    public static Workload build(WorkloadSpec spec) {
        List<TraceRow> rows = rows(spec.trace());
        return spec.rate() > 0 ? poisson(spec, rows) : replay(spec, rows);
    }

    private static Workload replay(WorkloadSpec spec, List<TraceRow> rows) {
        int n = rows.size();
        if (spec.durationS() > 0) {
            n = 0;
            while (n < rows.size() && rows.get(n).arrivalS() < spec.durationS()) n++;
        }
        double[] at = new double[n];
        int[] p = new int[n], o = new int[n];
        for (int i = 0; i < n; i++) {
            TraceRow r = rows.get(i);
            at[i] = r.arrivalS();
            p[i] = Math.max(1, r.promptTokens());
            o[i] = Math.max(1, r.outputTokens());
        }
        return new Workload(spec.trace() + " replayed (" + n + " requests)", at, p, o);
    }

    /** Exponential inter-arrival times at {@code rate}; each request's sizes are a uniformly drawn trace row. */
    private static Workload poisson(WorkloadSpec spec, List<TraceRow> rows) {
        SplittableRandom rnd = new SplittableRandom(spec.seed());
        int cap = spec.requests() > 0 ? Math.toIntExact(spec.requests())
                : (int) Math.min(Integer.MAX_VALUE - 8, Math.ceil(spec.rate() * spec.durationS() * 1.2 + 64));
        double[] at = new double[Math.min(cap, 1 << 16)];
        int[] p = new int[at.length], o = new int[at.length];
        int n = 0;
        double t = 0;
        while (true) {
            t += -Math.log(1 - rnd.nextDouble()) / spec.rate();
            if (spec.requests() > 0 ? n >= spec.requests() : t >= spec.durationS()) break;
            if (n == at.length) {
                int len = (int) Math.min((long) at.length * 2, Integer.MAX_VALUE - 8);
                at = java.util.Arrays.copyOf(at, len);
                p = java.util.Arrays.copyOf(p, len);
                o = java.util.Arrays.copyOf(o, len);
            }
            TraceRow r = rows.get(rnd.nextInt(rows.size()));
            at[n] = t;
            p[n] = Math.max(1, r.promptTokens());
            o[n] = Math.max(1, r.outputTokens());
            n++;
        }
        return new Workload(String.format("Poisson %.3g req/s, sizes from %s, seed %d (%d requests)", spec.rate(),
                Path.of(spec.trace()).getFileName(), spec.seed(), n),
                java.util.Arrays.copyOf(at, n), java.util.Arrays.copyOf(p, n), java.util.Arrays.copyOf(o, n));
    }
}
