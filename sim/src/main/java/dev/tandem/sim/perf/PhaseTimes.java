package dev.tandem.sim.perf;

/**
 * Iteration times of one (model, hardware, tensor-parallel degree), in seconds, looked up as SplitwiseSim
 * does: prompt-only batches on the prompt curve at the batch's prompt tokens, token-only batches on the
 * token curve at the number of decoding sequences, mixed batches on the prompt curve at
 * (prompt tokens + decoding sequences) x {@link #MIXED_PENALTY}.
 *
 * <p>Both curves are indexed by batch tokens = prompt_size x batch_size of the profile rows, as in
 * SplitwiseSim's {@code DatabasePerformanceModel} (so the token curve is read at x = batch size).
 *
 * @param promptWatts measured draw of one GPU during the prompt phase (profile column prompt_power_w, NVML), NaN if absent
 * @param tokenWatts  the same during the token phase (token_power_w)
 */
public record PhaseTimes(String model, String hardware, int tensorParallel, Curve prompt, Curve token,
                         double promptWatts, double tokenWatts) {
    public static final double MIXED_PENALTY = 1.1;

    public double promptSeconds(long promptTokens) {
        return prompt.at(promptTokens);
    }

    public double tokenSeconds(int decoding) {
        return token.at(decoding);
    }

    public double mixedSeconds(long promptTokens, int decoding) {
        return prompt.at((promptTokens + decoding) * MIXED_PENALTY);
    }

    /** One iteration of whichever kind the batch is; 0 for an empty batch. */
    public double iterationSeconds(long promptTokens, int decoding) {
        if (promptTokens > 0) return decoding > 0 ? mixedSeconds(promptTokens, decoding) : promptSeconds(promptTokens);
        return decoding > 0 ? tokenSeconds(decoding) : 0;
    }
}
