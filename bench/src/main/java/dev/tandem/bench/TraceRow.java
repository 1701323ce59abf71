package dev.tandem.bench;

/**
 * One request of a trace: its arrival in seconds after the trace's first row, and its token sizes.
 *
 * @param line the 1-based line in the CSV file (for error messages and the per-request CSV)
 */
public record TraceRow(int line, double arrivalS, int promptTokens, int outputTokens) {

    /**
     * Multiplies both sizes by {@code factor} (rounded, at least 1 each), then, when prompt + output exceeds
     * {@code maxContext}, shrinks both in proportion so the request keeps its prompt/output character
     * (prompt-heavy code stays prompt-heavy) and fits the model's context exactly.
     */
    public TraceRow scaled(double factor, int maxContext) {
        if (!(factor > 0)) throw new IllegalArgumentException("scale factor must be > 0, got " + factor);
        if (maxContext < 2) throw new IllegalArgumentException("max context must be >= 2, got " + maxContext);
        long p = Math.max(1, Math.round(promptTokens * factor));
        long o = Math.max(1, Math.round(outputTokens * factor));
        if (p + o > maxContext) {
            long p2 = Math.max(1, (long) Math.floor(p * (double) maxContext / (p + o)));
            p2 = Math.min(p2, maxContext - 1);
            o = Math.max(1, Math.min(o, maxContext - p2));
            p = p2;
        }
        return new TraceRow(line, arrivalS, (int) p, (int) o);
    }
}
