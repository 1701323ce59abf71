package dev.tandem.sim.perf;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Reads a performance profile in SplitwiseSim's {@code perf_model.csv} format (columns in any order:
 * model, hardware, prompt_size, batch_size, token_size, peak_power, average_power, prompt_time,
 * token_time, e2e_time, tensor_parallel; times in milliseconds), the format {@code tandem profile} writes too.
 * Repeated measurements of one batch-tokens point are reduced to their median, then joined into curves.
 * Optional columns {@code prompt_power_w} and {@code token_power_w}: one GPU's measured draw in each phase (what
 * {@code tandem profile} reads through NVML); their medians feed the energy estimate. SplitwiseSim's
 * peak_power / average_power columns are not used (SplitwiseSim does not use them either).
 */
public final class ProfileReader {
    private static final String[] REQUIRED = {"model", "hardware", "prompt_size", "batch_size", "prompt_time", "token_time", "tensor_parallel"};
    /** Iteration times are never taken below 0.1 ms, however a curve extrapolates. */
    private static final double FLOOR_S = 1e-4;

    private ProfileReader() {}

    public static PerfModel read(Path file) {
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException(file + ": performance profile not found");
        try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String header = in.readLine();
            if (header == null) throw new IllegalArgumentException(file + ": empty profile, expected a header with " + String.join(",", REQUIRED));
            String[] names = header.strip().replace("\uFEFF", "").split(",", -1);
            Map<String, Integer> col = new HashMap<>();
            for (int i = 0; i < names.length; i++) col.put(names[i].strip().toLowerCase(java.util.Locale.ROOT), i);
            for (String r : REQUIRED) {
                if (!col.containsKey(r)) throw new IllegalArgumentException(file + ": line 1: no column '" + r + "' in header '" + header.strip() + "'");
            }
            Map<String, Group> groups = new LinkedHashMap<>();
            int lineNo = 1;
            for (String line; (line = in.readLine()) != null; ) {
                lineNo++;
                if (line.isBlank()) continue;
                String[] c = line.split(",", -1);
                if (c.length != names.length) {
                    throw new IllegalArgumentException(file + ": line " + lineNo + ": expected " + names.length + " columns, found " + c.length);
                }
                String model = c[col.get("model")].strip(), hw = c[col.get("hardware")].strip();
                int tp = (int) number(c, col, "tensor_parallel", file, lineNo);
                double prompt = number(c, col, "prompt_size", file, lineNo), batch = number(c, col, "batch_size", file, lineNo);
                double pt = number(c, col, "prompt_time", file, lineNo), tt = number(c, col, "token_time", file, lineNo);
                if (prompt < 1 || batch < 1 || tp < 1 || !(pt > 0) || !(tt > 0)) {
                    throw new IllegalArgumentException(file + ": line " + lineNo + ": prompt_size, batch_size and tensor_parallel must be >= 1 and times > 0");
                }
                Group g = groups.computeIfAbsent(PerfModel.key(model, hw, tp), k -> new Group(model, hw, tp));
                double x = prompt * batch;
                g.prompt.computeIfAbsent(x, k -> new ArrayList<>()).add(pt / 1000);
                g.promptRows.add(new double[] {prompt, batch, pt / 1000});
                g.token.computeIfAbsent(x, k -> new ArrayList<>()).add(tt / 1000);
                if (col.containsKey("prompt_power_w")) g.promptWatts.add(number(c, col, "prompt_power_w", file, lineNo));
                if (col.containsKey("token_power_w")) g.tokenWatts.add(number(c, col, "token_power_w", file, lineNo));
            }
            if (groups.isEmpty()) throw new IllegalArgumentException(file + ": no rows after the header");
            Map<String, PhaseTimes> out = new HashMap<>();
            for (var e : groups.entrySet()) out.put(e.getKey(), e.getValue().build());
            return new PerfModel(file.toString(), out);
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    private static double number(String[] c, Map<String, Integer> col, String name, Path file, int line) {
        String s = c[col.get(name)].strip();
        try {
            double v = Double.parseDouble(s);
            if (Double.isFinite(v)) return v;
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new IllegalArgumentException(file + ": line " + line + ", column '" + name + "': '" + s + "' is not a number");
    }

    private static final class Group {
        final String model, hardware;
        final int tp;
        final TreeMap<Double, List<Double>> prompt = new TreeMap<>(), token = new TreeMap<>();
        final List<Double> promptWatts = new ArrayList<>(), tokenWatts = new ArrayList<>();
        final List<double[]> promptRows = new ArrayList<>();

        Group(String model, String hardware, int tp) {
            this.model = model;
            this.hardware = hardware;
            this.tp = tp;
        }

        PhaseTimes build() {
            return new PhaseTimes(model, hardware, tp, curve(prompt), curve(token), measuredWatts(promptWatts), measuredWatts(tokenWatts),
                    promptRows.toArray(new double[0][]), 0);
        }

        private static Curve curve(TreeMap<Double, List<Double>> points) {
            double[] x = new double[points.size()], y = new double[points.size()];
            int i = 0;
            for (var e : points.entrySet()) {
                x[i] = e.getKey();
                y[i++] = median(e.getValue());
            }
            return new Curve(x, y, FLOOR_S);
        }

        /** Median of the positive readings; NaN when the profile has none. */
        private static double measuredWatts(List<Double> v) {
            List<Double> positive = v.stream().filter(d -> d > 0).toList();
            return positive.isEmpty() ? Double.NaN : median(positive);
        }
    }

    static double median(List<Double> v) {
        double[] a = v.stream().mapToDouble(Double::doubleValue).toArray();
        Arrays.sort(a);
        int n = a.length;
        return n % 2 == 1 ? a[n / 2] : (a[n / 2 - 1] + a[n / 2]) / 2;
    }
}
