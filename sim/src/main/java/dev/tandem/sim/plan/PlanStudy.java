package dev.tandem.sim.plan;

import dev.tandem.sim.config.Design;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * One plan-cluster study over the six designs: the best pool sizes of each under the objective, and how they
 * compare with the baselines (throughput, cost and power ratios).
 */
public record PlanStudy(String model, String trace, Objective objective, String constraint, List<Candidate> best, int simulations,
                        double wallS) {

    public static PlanStudy run(Provisioner p, String model, String trace, Objective objective, double powerBudget, double costBudget,
                                double throughput, int maxMachines) {
        long t0 = System.nanoTime();
        List<Candidate> out = new ArrayList<>();
        String constraint;
        if (objective == Objective.MAX_THROUGHPUT) {
            boolean byPower = powerBudget > 0;
            if (byPower == (costBudget > 0)) throw new IllegalArgumentException("max-throughput needs exactly one of --power-budget and --cost-budget");
            double budget = byPower ? powerBudget : costBudget;
            constraint = String.format(Locale.ROOT, "%s budget %.1f units", byPower ? "power" : "cost", budget);
            for (Design d : Design.values()) out.add(p.maxThroughput(d, budget, byPower));
        } else {
            if (!(throughput > 0)) throw new IllegalArgumentException(objective.flag() + " needs --throughput R (requests/s)");
            constraint = String.format(Locale.ROOT, "throughput %.2f requests/s under the SLOs", throughput);
            for (Design d : Design.values()) {
                Candidate c = p.minimise(d, throughput, objective == Objective.MIN_POWER, maxMachines);
                out.add(c != null ? c : new Candidate(d, 0, 0, Double.NaN));
            }
        }
        return new PlanStudy(model, trace, objective, constraint, out, p.simulations(), (System.nanoTime() - t0) / 1e9);
    }

    public Candidate of(Design d) {
        for (Candidate c : best) if (c.design() == d) return c;
        throw new IllegalStateException("no candidate for " + d.flag());
    }

    public String markdown() {
        StringBuilder b = new StringBuilder();
        b.append("# plan-cluster: ").append(model).append(", ").append(trace).append(" trace, ").append(objective.flag())
                .append(" (").append(constraint).append(")\n\n");
        Candidate a100 = of(Design.BASELINE_A100), h100 = of(Design.BASELINE_H100);
        b.append("| design | prompt machines | token machines | cost (units/h) | power (units) | throughput (req/s) | vs Baseline-A100 | vs Baseline-H100 |\n");
        b.append("|---|---:|---:|---:|---:|---:|---|---|\n");
        for (Candidate c : best) {
            boolean none = c.machines() == 0;
            b.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s | %s | %s | %s |%n", c.design().flag(),
                    none ? "-" : String.valueOf(c.promptMachines()), none || !c.design().split() ? "-" : String.valueOf(c.tokenMachines()),
                    none ? "-" : String.format(Locale.ROOT, "%.2f", c.cost()), none ? "-" : String.format(Locale.ROOT, "%.1f", c.power()),
                    none ? "none found" : String.format(Locale.ROOT, "%.2f", c.throughputRps()), ratio(c, a100), ratio(c, h100)));
        }
        b.append(String.format(Locale.ROOT, "%n%d simulations in %.1f s%n", simulations, wallS));
        return b.toString();
    }

    private String ratio(Candidate c, Candidate base) {
        if (c.machines() == 0 || base.machines() == 0) return "-";
        if (objective == Objective.MAX_THROUGHPUT) {
            return base.throughputRps() > 0 ? String.format(Locale.ROOT, "%.2fx throughput", c.throughputRps() / base.throughputRps()) : "-";
        }
        return String.format(Locale.ROOT, "%.2fx cost, %.2fx power", c.cost() / base.cost(), c.power() / base.power());
    }
}
