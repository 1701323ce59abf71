package dev.tandem.offload.policy;

import java.util.Locale;

/**
 * What the {@link CostModel} predicts for one policy: throughput, the time of each phase, the per-layer terms that
 * make it up, and the peak memory of each tier.
 *
 * @param prefillSeconds l T_pre: the whole block's prompts
 * @param decodeSeconds  l (n - 1) T_gen: the whole block's remaining tokens
 */
public record Estimate(CostModel model, OffloadPolicy policy, double tokensPerSecond, double prefillSeconds, double decodeSeconds,
                       PhaseTimes prefill, PhaseTimes decode,
                       double gpuPeakPrefill, double gpuPeakDecode, double cpuPeakPrefill, double cpuPeakDecode, double diskPeak) {

    /** One phase's per-layer seconds for one block; {@code layer} is the overlapped total of the cost model. */
    /** @param inlineCopies copies in line with compute (Tandem's schedule: activations and KV on the compute stream) */
    public record PhaseTimes(double cpuToGpu, double gpuToCpu, double diskToCpu, double cpuToDisk, double gpuMatmul,
                             double attention, double inlineCopies, double layer) {
        static PhaseTimes of(CostModel.Phase p, double[] x, double layer) {
            return new PhaseTimes(p.ctog().at(x), p.gtoc().at(x), p.dtoc().at(x), p.ctod().at(x), p.matmul().at(x),
                    p.attention().at(x), p.copies().at(x), layer);
        }
    }

    public double totalSeconds() { return prefillSeconds + decodeSeconds; }

    public double gpuPeak() { return Math.max(gpuPeakPrefill, gpuPeakDecode); }

    public double cpuPeak() { return Math.max(cpuPeakPrefill, cpuPeakDecode); }

    /** Whether the peaks fit in {@code headroom} (FlexGen: 0.8) of each tier's capacity. */
    public boolean fits(double headroom) {
        HardwareProfile hw = model.hardware();
        double h = headroom * (1 + 1e-6);  // the LP's own tolerance
        return gpuPeak() <= h * hw.gpuMemory() && cpuPeak() <= h * hw.cpuMemory() && diskPeak <= h * hw.diskMemory();
    }

    /** The term that sets the time of the phase that takes longer: what to make faster first. */
    public String bottleneck() {
        boolean decodeLonger = decodeSeconds >= prefillSeconds;
        PhaseTimes p = decodeLonger ? decode : prefill;
        String phase = decodeLonger ? "decode" : "prefill";
        String attentionWhere = policy.cpuCacheCompute() && policy.cacheGpuPercent() < 100 ? "attention (mostly CPU)" : "attention (GPU)";
        String[] names = {"CPU->GPU copies", "GPU->CPU copies", "disk reads", "disk writes", "GPU matmuls", attentionWhere,
                "activation / KV copies on the compute stream"};
        double[] v = {p.cpuToGpu, p.gpuToCpu, p.diskToCpu, p.cpuToDisk, p.gpuMatmul, p.attention, p.inlineCopies};
        int worst = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[worst]) worst = i;
        return String.format(Locale.ROOT, "%s (%.0f%% of the time): %s, %.3f s of the %.3f s per layer and block",
                phase, 100 * (decodeLonger ? decodeSeconds : prefillSeconds) / totalSeconds(), names[worst], v[worst], p.layer);
    }

    /** A readable report: placement table, per-layer terms, memory, throughput and bottleneck. */
    public String table() {
        HardwareProfile hw = model.hardware();
        OffloadPolicy q = policy;
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "| tensor | GPU %% | CPU %% | disk %% | compressed |%n|---|---:|---:|---:|---|%n"));
        b.append(row("weights", q.weightGpuPercent(), q.weightCpuPercent(), q.weightDiskPercent(), q.compressWeight()));
        b.append(row("KV cache", q.cacheGpuPercent(), q.cacheCpuPercent(), q.cacheDiskPercent(), q.compressCache()));
        b.append(row("activations", q.actGpuPercent(), q.actCpuPercent(), q.actDiskPercent(), false));
        b.append(String.format(Locale.ROOT, "%nGPU batch %d x %d batches = block of %d sequences; attention on the %s%n",
                q.gpuBatchSize(), q.numGpuBatches(), q.blockSize(), q.cpuCacheCompute() ? "CPU (over the CPU-resident cache)" : "GPU"));
        b.append(hw.schedule() == HardwareProfile.Schedule.TANDEM
                ? "times as Tandem's executor overlaps its work (weights on a copy stream, activation and KV copies in line with compute)\n"
                : "times by FlexGen's cost model (its overlap rules)\n");
        b.append(String.format(Locale.ROOT, "%n| per layer, one block (s) | CPU->GPU | GPU->CPU | disk->CPU | CPU->disk | GPU matmul | attention | in-line copies | layer |%n"
                + "|---|---:|---:|---:|---:|---:|---:|---:|---:|%n"));
        b.append(phaseRow("prefill", prefill)).append(phaseRow("decode step", decode));
        b.append(String.format(Locale.ROOT, "%npeak memory: GPU %.2f GiB of %.2f, CPU %.2f GiB of %.2f, disk %.2f GiB of %.2f%n",
                gib(gpuPeak()), gib(hw.gpuMemory()), gib(cpuPeak()), gib(hw.cpuMemory()), gib(diskPeak), gib(hw.diskMemory())));
        b.append(String.format(Locale.ROOT, "time: prefill %.1f s + decode %.1f s = %.1f s for %d x %d tokens%n",
                prefillSeconds, decodeSeconds, totalSeconds(), q.blockSize(), model.genLen()));
        b.append(String.format(Locale.ROOT, "predicted throughput: %.2f tokens/s%n", tokensPerSecond));
        b.append("bottleneck: ").append(bottleneck()).append('\n');
        return b.toString();
    }

    private static String row(String what, double g, double c, double d, boolean compressed) {
        return String.format(Locale.ROOT, "| %s | %.1f | %.1f | %.1f | %s |%n", what, g, c, d, compressed ? "4-bit" : "no");
    }

    private static String phaseRow(String what, PhaseTimes p) {
        return String.format(Locale.ROOT, "| %s | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f |%n", what,
                p.cpuToGpu, p.gpuToCpu, p.diskToCpu, p.cpuToDisk, p.gpuMatmul, p.attention, p.inlineCopies, p.layer);
    }

    private static double gib(double bytes) { return bytes / HardwareProfile.GIB; }
}
