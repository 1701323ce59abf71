package dev.tandem.sim.perf;

import java.util.Map;
import java.util.TreeMap;

/** Iteration-time curves for every (model, hardware, TP) a profile covers. */
public final class PerfModel {
    private final String source;
    private final Map<String, PhaseTimes> byKey;

    PerfModel(String source, Map<String, PhaseTimes> byKey) {
        this.source = source;
        this.byKey = new TreeMap<>(byKey);
    }

    public String source() { return source; }

    static String key(String model, String hardware, int tp) {
        return model + "/" + hardware + "/tp" + tp;
    }

    public boolean has(String model, String hardware, int tp) {
        return byKey.containsKey(key(model, hardware, tp));
    }

    public PhaseTimes get(String model, String hardware, int tp) {
        PhaseTimes t = byKey.get(key(model, hardware, tp));
        if (t == null) {
            throw new IllegalArgumentException(source + ": no profile rows for model '" + model + "', hardware '" + hardware
                    + "', tensor parallel " + tp + " (the profile has: " + String.join(", ", byKey.keySet()) + ")");
        }
        return t;
    }

    public Iterable<String> keys() { return byKey.keySet(); }
}
