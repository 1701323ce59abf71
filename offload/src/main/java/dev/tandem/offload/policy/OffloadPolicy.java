package dev.tandem.offload.policy;

import java.util.Locale;

/**
 * Where a FlexGen-style run keeps its tensors and how it batches: the output of the policy search and the input of the
 * block schedule. Percentages are of each tensor kind's total bytes; what is not on the GPU or the CPU is on disk.
 *
 * @param gpuBatchSize       sequences per GPU batch
 * @param numGpuBatches      GPU batches per block: the block ({@code gpuBatchSize * numGpuBatches} sequences) shares
 *                           one load of each layer's weights per generated token
 * @param weightGpuPercent   of the weights, on the GPU (the rest of the GPU's share is streamed in per layer)
 * @param weightCpuPercent   of the weights, in (pinned) CPU memory
 * @param cacheGpuPercent    of the KV cache, on the GPU
 * @param cacheCpuPercent    of the KV cache, in CPU memory
 * @param actGpuPercent      of the activations (hidden states between layers), on the GPU
 * @param actCpuPercent      of the activations, in CPU memory
 * @param compressWeight     weights stored as 4-bit groups (group 64 along the output channel)
 * @param compressCache      KV cache stored as 4-bit groups (group 64 along head_dim)
 * @param cpuCacheCompute    attention runs on the CPU over the CPU-resident KV cache instead of moving it to the GPU
 */
public record OffloadPolicy(
        int gpuBatchSize, int numGpuBatches,
        double weightGpuPercent, double weightCpuPercent,
        double cacheGpuPercent, double cacheCpuPercent,
        double actGpuPercent, double actCpuPercent,
        boolean compressWeight, boolean compressCache, boolean cpuCacheCompute) {

    public OffloadPolicy {
        if (gpuBatchSize < 1 || numGpuBatches < 1) {
            throw new IllegalArgumentException("GPU batch size and number of GPU batches must be at least 1, got "
                    + gpuBatchSize + " and " + numGpuBatches);
        }
        check("weights", weightGpuPercent, weightCpuPercent);
        check("KV cache", cacheGpuPercent, cacheCpuPercent);
        check("activations", actGpuPercent, actCpuPercent);
    }

    private static void check(String what, double gpu, double cpu) {
        if (gpu < 0 || cpu < 0 || gpu + cpu > 100 + 1e-9) {
            throw new IllegalArgumentException(what + ": GPU " + gpu + "% and CPU " + cpu + "% must be non-negative and add up to at most 100%");
        }
    }

    public double weightDiskPercent() { return Math.max(0, 100 - weightGpuPercent - weightCpuPercent); }

    public double cacheDiskPercent() { return Math.max(0, 100 - cacheGpuPercent - cacheCpuPercent); }

    public double actDiskPercent() { return Math.max(0, 100 - actGpuPercent - actCpuPercent); }

    /** Sequences per block. */
    public int blockSize() { return gpuBatchSize * numGpuBatches; }

    /**
     * Parses FlexGen's command-line form: "GBS NUM_GB W_GPU W_CPU C_GPU C_CPU A_GPU A_CPU [flags]", e.g.
     * {@code "48 3 20 80 0 100 0 100 cpu-cache-compute"}; flags are compress-weight, compress-cache and cpu-cache-compute.
     */
    public static OffloadPolicy parse(String text) {
        String[] f = text.trim().split("[\\s,]+");
        if (f.length < 8) {
            throw new IllegalArgumentException("offload policy '" + text + "': expected GBS NUM_GB W_GPU W_CPU C_GPU C_CPU A_GPU A_CPU [flags]");
        }
        boolean cw = false, cc = false, cpu = false;
        for (int i = 8; i < f.length; i++) {
            switch (f[i].toLowerCase(Locale.ROOT)) {
                case "compress-weight" -> cw = true;
                case "compress-cache" -> cc = true;
                case "cpu-cache-compute" -> cpu = true;
                default -> throw new IllegalArgumentException("offload policy '" + text + "': unknown flag '" + f[i]
                        + "' (compress-weight, compress-cache, cpu-cache-compute)");
            }
        }
        try {
            return new OffloadPolicy(Integer.parseInt(f[0]), Integer.parseInt(f[1]),
                    Double.parseDouble(f[2]), Double.parseDouble(f[3]), Double.parseDouble(f[4]), Double.parseDouble(f[5]),
                    Double.parseDouble(f[6]), Double.parseDouble(f[7]), cw, cc, cpu);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("offload policy '" + text + "': " + e.getMessage(), e);
        }
    }

    /** The form {@link #parse} reads. */
    public String format() {
        StringBuilder b = new StringBuilder(String.format(Locale.ROOT, "%d %d %s %s %s %s %s %s", gpuBatchSize, numGpuBatches,
                num(weightGpuPercent), num(weightCpuPercent), num(cacheGpuPercent), num(cacheCpuPercent),
                num(actGpuPercent), num(actCpuPercent)));
        if (compressWeight) b.append(" compress-weight");
        if (compressCache) b.append(" compress-cache");
        if (cpuCacheCompute) b.append(" cpu-cache-compute");
        return b.toString();
    }

    private static String num(double v) {
        return v == Math.rint(v) ? Long.toString((long) v) : String.format(Locale.ROOT, "%.1f", v);
    }
}
