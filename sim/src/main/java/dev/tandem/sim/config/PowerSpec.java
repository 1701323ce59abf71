package dev.tandem.sim.config;

/**
 * Machine power draw by what it is doing, as fractions of its TDP, for the energy estimate. Defaults follow
 * Splitwise's characterization (prompt phase near the power limit, token phase well below it); a profile with
 * measured watts ({@code tandem profile}, NVML) should replace them.
 */
public record PowerSpec(double promptFraction, double tokenFraction, double idleFraction) {
    public static final PowerSpec DEFAULT = new PowerSpec(0.95, 0.65, 0.25);

    public PowerSpec {
        for (double f : new double[]{promptFraction, tokenFraction, idleFraction}) {
            if (!(f >= 0 && f <= 1.5)) throw new IllegalArgumentException("power fractions must be in [0, 1.5], got " + f);
        }
    }
}
