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
 * @param promptRows  the profile's prompt rows as {prompt_size, batch_size, seconds}, for {@link #withoutPromptAttention}
 * @param promptPairSeconds seconds per causal attention pair taken out of the prompt curve (0: the curve holds them)
 */
public record PhaseTimes(String model, String hardware, int tensorParallel, Curve prompt, Curve token,
                         double promptWatts, double tokenWatts, double[][] promptRows, double promptPairSeconds) {
    public static final double MIXED_PENALTY = 1.1;

    /**
     * The same times with the prompt curve's causal attention taken out: each profile row loses its prompts' own
     * attention, batch x p (p + 1) / 2 (query, key) pairs at {@code secondsPerPair}, before the median per batch-token
     * count. What is left grows with the tokens alone (the GEMMs), so a simulator that then charges each step's
     * attention pairs itself prices one long prompt and many short ones of the same tokens apart, as the GPU does:
     * on the H200 profile of the 8B shape, at 4 ns per pair, the rows of 1,024, 2,048 and 4,096 batch tokens agree to
     * within 4% after the subtraction whatever their prompt sizes (they were 9%, 19% and 33% apart).
     */
    public PhaseTimes withoutPromptAttention(double secondsPerPair) {
        double floorSeconds = prompt.floor();
        java.util.TreeMap<Double, java.util.List<Double>> points = new java.util.TreeMap<>();
        for (double[] r : promptRows) {
            double pairs = r[1] * r[0] * (r[0] + 1) / 2;
            points.computeIfAbsent(r[0] * r[1], k -> new java.util.ArrayList<>()).add(Math.max(floorSeconds, r[2] - pairs * secondsPerPair));
        }
        double[] x = new double[points.size()], y = new double[points.size()];
        int i = 0;
        for (var e : points.entrySet()) {
            x[i] = e.getKey();
            y[i++] = ProfileReader.median(e.getValue());
        }
        return new PhaseTimes(model, hardware, tensorParallel, new Curve(x, y, floorSeconds), token, promptWatts, tokenWatts, promptRows,
                secondsPerPair);
    }

    public double promptSeconds(long promptTokens) {
        return prompt.at(promptTokens);
    }

    /** One prompt alone in one iteration: the curve, and its causal attention pairs where the curve does not hold them. */
    public double promptAloneSeconds(long promptTokens) {
        return prompt.at(promptTokens) + promptTokens * (promptTokens + 1.0) / 2 * promptPairSeconds;
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
