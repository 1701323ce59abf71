package dev.tandem.bench;

import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/** The options of {@code tandem bench serve}, parsed and checked; every mistake is a {@link UsageException} naming the option. */
public record BenchOptions(String url, String model, Path tokenizer, Path trace, boolean replay, double rate, long seed,
                           long promptSeed,
                           double durationS, int maxRequests, double scaleTokens, int maxContext, String apiKey,
                           int concurrency, Path out, boolean progress, int baselineRequests, double timeoutS,
                           boolean ttftByLength) {

    /** Wrong command line: printed with a hint to --help, exit code 2. */
    public static final class UsageException extends BenchException {
        public UsageException(String message) {
            super(message);
        }
    }

    /** Option name to help text, in the order --help prints them. */
    static final Map<String, String> VALUED = new LinkedHashMap<>();
    static final Map<String, String> FLAGS = new LinkedHashMap<>();

    static {
        VALUED.put("url", "base URL of the OpenAI-compatible server, e.g. http://127.0.0.1:8000 (required)");
        VALUED.put("model", "model name to send (default: the first id from GET /v1/models)");
        VALUED.put("tokenizer", "model folder or tokenizer file that sizes the prompts in tokens (required)");
        VALUED.put("trace", "Azure 2023 trace CSV: TIMESTAMP,ContextTokens,GeneratedTokens (required)");
        VALUED.put("rate", "Poisson arrivals at R requests/s, sizes from the trace rows in order");
        VALUED.put("seed", "seed of the Poisson arrivals (default 42)");
        VALUED.put("prompt-seed", "seed of the prompts' words (default: a new one each run, so that a server's prefix cache holds nothing of earlier runs)");
        VALUED.put("duration", "stop issuing after S seconds");
        VALUED.put("max-requests", "stop issuing after N requests");
        VALUED.put("scale-tokens", "multiply prompt and output sizes by F (default 1)");
        VALUED.put("max-context", "clamp prompt + output to N tokens (default 512)");
        VALUED.put("api-key", "sent as 'Authorization: Bearer KEY'");
        VALUED.put("concurrency", "cap on requests in flight (default: none, open loop)");
        VALUED.put("baseline-requests", "unloaded requests sent one at a time before the run (default 3)");
        VALUED.put("timeout", "seconds to wait for a response's headers (default 600)");
        VALUED.put("out", "output folder (default bench-out/serve-<timestamp>)");
        FLAGS.put("replay", "send at the trace's own arrival times (relative to its first row)");
        FLAGS.put("no-progress", "no progress bar on stderr");
        FLAGS.put("median-ttft-only", "judge every TTFT against the median prompt's unloaded TTFT (default: also measure the 10th and 90th percentile prompt lengths and interpolate)");
        FLAGS.put("help", "show options");
    }

    public static String usage() {
        StringBuilder sb = new StringBuilder("usage: tandem bench serve --url URL --tokenizer PATH --trace FILE.csv (--replay | --rate R) [options]\n");
        VALUED.forEach((k, v) -> sb.append(String.format("  --%-18s %s%n", k + " X", v)));
        FLAGS.forEach((k, v) -> sb.append(String.format("  --%-18s %s%n", k, v)));
        return sb.toString();
    }

    /** @return null when --help was asked for */
    public static BenchOptions parse(String[] argv) {
        Map<String, String> v = new LinkedHashMap<>();
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i];
            if (!a.startsWith("--") || a.length() == 2) throw new UsageException("unexpected argument '" + a + "'");
            String name = a.substring(2), value = null;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            }
            if (FLAGS.containsKey(name)) {
                if (value != null) throw new UsageException("--" + name + " takes no value");
                v.put(name, "true");
            } else if (VALUED.containsKey(name)) {
                if (value == null) {
                    if (i + 1 >= argv.length) throw new UsageException("--" + name + " needs a value");
                    value = argv[++i];
                }
                v.put(name, value);
            } else {
                Set<String> known = new java.util.TreeSet<>(VALUED.keySet());
                known.addAll(FLAGS.keySet());
                throw new UsageException("unknown option --" + name + " (known: --" + String.join(", --", known) + ")");
            }
        }
        if (v.containsKey("help")) return null;
        boolean replay = v.containsKey("replay");
        boolean poisson = v.containsKey("rate");
        if (replay == poisson) throw new UsageException("give exactly one of --replay (trace arrival times) or --rate R (Poisson arrivals)");
        double rate = poisson ? positive(v, "rate", 0) : 0;
        Path out = v.containsKey("out") ? Path.of(v.get("out"))
                : Path.of("bench-out", "serve-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
        int maxContext = integer(v, "max-context", 512);
        if (maxContext < 2) throw new UsageException("--max-context must be at least 2, got " + maxContext);
        int baseline = integer(v, "baseline-requests", 3);
        if (baseline < 1) throw new UsageException("--baseline-requests must be at least 1, got " + baseline);
        return new BenchOptions(required(v, "url"), v.get("model"), Path.of(required(v, "tokenizer")), Path.of(required(v, "trace")),
                replay, rate, longValue(v, "seed", 42),
                v.containsKey("prompt-seed") ? longValue(v, "prompt-seed", 0) : java.util.concurrent.ThreadLocalRandom.current().nextLong(),
                positive(v, "duration", 0), integer(v, "max-requests", 0),
                positive(v, "scale-tokens", 1), maxContext, v.get("api-key"), integer(v, "concurrency", 0), out,
                !v.containsKey("no-progress"), baseline, positive(v, "timeout", 600), !v.containsKey("median-ttft-only"));
    }

    private static String required(Map<String, String> v, String name) {
        String s = v.get(name);
        if (s == null || s.isBlank()) throw new UsageException("--" + name + " is required");
        return s;
    }

    private static double positive(Map<String, String> v, String name, double def) {
        if (!v.containsKey(name)) return def;
        try {
            double d = Double.parseDouble(v.get(name));
            if (d > 0 && Double.isFinite(d)) return d;
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new UsageException("--" + name + " must be a positive number, got '" + v.get(name) + "'");
    }

    private static int integer(Map<String, String> v, String name, int def) {
        if (!v.containsKey(name)) return def;
        try {
            int n = Integer.parseInt(v.get(name));
            if (n >= 0) return n;
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new UsageException("--" + name + " must be a non-negative integer, got '" + v.get(name) + "'");
    }

    private static long longValue(Map<String, String> v, String name, long def) {
        if (!v.containsKey(name)) return def;
        try {
            return Long.parseLong(v.get(name));
        } catch (NumberFormatException e) {
            throw new UsageException("--" + name + " must be an integer, got '" + v.get(name) + "'");
        }
    }
}
