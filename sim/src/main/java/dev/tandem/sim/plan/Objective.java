package dev.tandem.sim.plan;

import com.fasterxml.jackson.annotation.JsonValue;

/** What plan-cluster optimises: throughput within a power or cost budget, or cost or power at a throughput. */
public enum Objective {
    MAX_THROUGHPUT("max-throughput"), MIN_COST("min-cost"), MIN_POWER("min-power");

    private final String flag;

    Objective(String flag) { this.flag = flag; }

    @JsonValue
    public String flag() { return flag; }

    public static Objective parse(String s) {
        for (Objective o : values()) if (o.flag.equals(s)) return o;
        throw new IllegalArgumentException("unknown objective '" + s + "' (expected max-throughput, min-cost or min-power)");
    }
}
