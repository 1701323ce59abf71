package dev.tandem.offload.calibrate;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.offload.exec.HostKvCache;
import dev.tandem.offload.exec.LayerProgram;
import dev.tandem.offload.policy.HardwareProfile;
import dev.tandem.offload.policy.ModelShape;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * Measures the constants of the offloading cost model on this machine and fills a {@link HardwareProfile}: disk and
 * CPU always, the GPU when a CUDA backend is given. What is not measured comes from a base profile, and the profile's
 * source line says which keys were measured. Shapes follow a model (the attention heads and matrix sizes the policy
 * will run), OPT-30B's by default.
 */
public final class Calibration {
    /**
     * @param diskDir     where the disk probe writes its temporary file (the offloading directory)
     * @param diskBytes   bytes written and read back
     * @param cpuSeqs     sequences in the CPU attention probe (its KV cache is f32: seqs x ctx x kv width x 8 bytes)
     * @param gpuBatch    GPU batch for the decode matmul and attention probes
     * @param promptLen   prompt length for the prefill probes and the decode context
     * @param genLen      generated tokens: the host-attention probe's queries sit at the mean decode context,
     *                    promptLen + genLen / 2, of caches of promptLen + genLen slots per sequence
     * @param hostCacheBytes bytes of the host-attention probe's cache (more than the CPU caches hold, as in a run)
     * @param prefillRows rows of one prefill segment (the executor's --chunk-rows) for the GPU layer probe
     * @param seconds     time budget of each compute figure
     */
    public record Settings(ModelShape shape, Path diskDir, long diskBytes, int cpuSeqs, int gpuBatch, int promptLen, int genLen,
                           long hostCacheBytes, int prefillRows, double seconds) {}

    private final Settings s;
    private final Consumer<String> log;
    private final List<String> measured = new ArrayList<>();

    public Calibration(Settings settings, Consumer<String> log) {
        this.s = settings;
        this.log = log;
    }

    /**
     * Runs the probes and returns the profile. {@code cpu} is the CPU backend (its thread pool runs the host-attention
     * probe, as it runs the executor's CPU attention); {@code gpu} the CUDA backend of the
     * device {@code ordinal}, or null to skip the GPU figures.
     */
    public HardwareProfile run(String name, HardwareProfile base, Backend cpu, Backend gpu, int ordinal) throws IOException {
        return run(name, base, cpu, gpu, ordinal, null);
    }

    /**
     * As above; {@code program} (the model's layers on the GPU path, q|k|v stacked; synthetic weights will do) makes the
     * GPU matmul rates those of the executor's whole layer rather than of one GEMM.
     */
    public HardwareProfile run(String name, HardwareProfile base, Backend cpu, Backend gpu, int ordinal, LayerProgram program) throws IOException {
        ModelShape m = s.shape;
        DiskProbe.Rates d = DiskProbe.measure(s.diskDir, s.diskBytes, 8 << 20);
        double diskRead = d.readBytesPerSecond(), diskWrite = d.writeBytesPerSecond();
        log.accept(String.format(Locale.ROOT, "disk %s: write %.2f GB/s, read %.2f GB/s (%d MiB, 8 MiB blocks, %s)", s.diskDir,
                diskWrite / 1e9, diskRead / 1e9, d.bytes() >> 20,
                d.direct() ? "O_DIRECT" : "no O_DIRECT on this file system: reads may have come from the page cache"));
        measured.add("disk");

        int ctx = s.promptLen;
        BackendProbe cpuProbe = new BackendProbe(cpu, s.seconds);
        double cpuAttention = cpuProbe.decodeAttention(s.cpuSeqs, ctx, m.heads(), m.kvHeads(), m.headDim());
        log.accept(String.format(Locale.ROOT, "CPU decode attention (%d seqs x %d ctx, %d heads of %d): %.2f GFLOP/s",
                s.cpuSeqs, ctx, m.heads(), m.headDim(), cpuAttention / 1e9));
        double cpuMatmul = cpuProbe.matmul(s.gpuBatch, m.hidden(), m.hidden());
        log.accept(String.format(Locale.ROOT, "CPU matmul (%d x %d x %d, bf16 weight): %.1f GFLOP/s (reported only: the cost model runs matmuls on the GPU)",
                s.gpuBatch, m.hidden(), m.hidden(), cpuMatmul / 1e9));
        measured.add("cpu_attention");
        // The executor's own CPU attention (HostAttention over a HostKvCache) for one GPU batch of one layer, per format.
        HostAttentionProbe host = new HostAttentionProbe(((CpuBackend) cpu).pool(), s.seconds);
        int hostCtx = s.promptLen + s.genLen / 2, capacity = Math.ceilDiv(s.promptLen + s.genLen, KvLayout.DEFAULT_BLOCK_SIZE)
                * KvLayout.DEFAULT_BLOCK_SIZE;
        double[] hostRates = new double[2];
        HostKvCache.Format[] formats = {HostKvCache.Format.BF16, HostKvCache.Format.GQ4};
        for (int i = 0; i < 2; i++) {
            HostAttentionProbe.Rate r = host.measure(formats[i], s.gpuBatch, hostCtx, capacity, m.heads(), m.kvHeads(), m.headDim(), s.hostCacheBytes);
            hostRates[i] = r.flops();
            log.accept(String.format(Locale.ROOT, "CPU attention as the executor runs it (HostAttention, %s cache of %.2f GiB in %d layers, "
                            + "%d seqs x %d ctx, %d threads): %.2f GFLOP/s",
                    formats[i], r.cacheBytes() / HardwareProfile.GIB, r.layers(), s.gpuBatch, hostCtx, ((CpuBackend) cpu).pool().threads(),
                    r.flops() / 1e9));
        }
        measured.add("host_attention");

        long cpuMem = physicalMemory(base.cpuMemory());
        long diskMem = Files.getFileStore(s.diskDir).getUsableSpace();
        long gpuMem = base.gpuMemory();
        double h2d = base.cpuToGpu(), d2h = base.gpuToCpuHidden(), d2hCache = base.gpuToCpuCache(), hbm = base.gpuMemoryBandwidth();
        double mmP = base.gpuMatmulPrefill(), mmG = base.gpuMatmulDecode(), bmmP = base.gpuBmmPrefill(), bmmG = base.gpuBmmDecode();
        if (gpu == null) {
            log.accept("GPU figures skipped (no CUDA device): cpu_to_gpu, gpu_to_cpu, gpu_matmul, gpu_bmm and gpu_memory_bandwidth "
                    + "kept from " + base.name());
        } else {
            TransferProbe.Rates t = TransferProbe.measure(ordinal, 1L << 30, 5);
            log.accept(String.format(Locale.ROOT, "GPU %d pinned copies (1 GiB): host->device %.1f GB/s, device->host %.1f GB/s; device memory %.0f GB/s",
                    ordinal, t.hostToDevice() / 1e9, t.deviceToHost() / 1e9, t.deviceMemory() / 1e9));
            gpuMem = t.deviceTotalBytes();
            h2d = t.hostToDevice();
            d2h = d2hCache = t.deviceToHost();
            hbm = t.deviceMemory();
            BackendProbe g = new BackendProbe(gpu, s.seconds);
            int prefillRows = Math.max(s.promptLen, 2048);
            double gemmP = g.matmul(prefillRows, m.ffn(), m.hidden()), gemmG = g.matmul(s.gpuBatch, m.ffn(), m.hidden());
            log.accept(String.format(Locale.ROOT, "GPU GEMM alone %d x %d x %d: %.1f TFLOP/s; %d rows: %.1f TFLOP/s", prefillRows, m.ffn(), m.hidden(),
                    gemmP / 1e12, s.gpuBatch, gemmG / 1e12));
            if (program != null) {
                // The executor's layer (every op around attention), which is what the cost model's matmul term stands for.
                mmP = g.layer(program, s.prefillRows, true);
                mmG = g.layer(program, s.gpuBatch, true);
                log.accept(String.format(Locale.ROOT, "GPU layer without attention (the executor's ops, 2 FLOP per weight per row): %d rows "
                        + "%.1f TFLOP/s, %d rows %.1f TFLOP/s (used for gpu_matmul_prefill / decode)", s.prefillRows, mmP / 1e12, s.gpuBatch, mmG / 1e12));
                measured.add("gpu layer");
            } else {
                mmP = gemmP;
                mmG = gemmG;
            }
            bmmP = g.prefillAttention(s.promptLen, m.heads(), m.kvHeads(), m.headDim());
            bmmG = g.decodeAttention(s.gpuBatch, ctx, m.heads(), m.kvHeads(), m.headDim());
            log.accept(String.format(Locale.ROOT, "GPU attention: prefill %d tokens %.1f TFLOP/s; decode %d seqs x %d ctx %.2f TFLOP/s",
                    s.promptLen, bmmP / 1e12, s.gpuBatch, ctx, bmmG / 1e12));
            measured.add("gpu copies, matmul, attention, memory bandwidth");
        }
        String source = String.format(Locale.ROOT, "tandem calibrate on %s, shapes of %s; measured: %s%s", hostName(), m.name(),
                String.join(", ", measured), gpu == null ? "; GPU constants from " + base.name() : "");
        // FlexGen's c1..c3 correct a CPU rate fitted at other batch sizes; this one is measured at the GPU batch used.
        // Tandem's schedule: the profile describes this machine running Tandem's executor.
        return new HardwareProfile(name, source, gpuMem, cpuMem, diskMem, h2d, d2hCache, d2h, diskRead, diskWrite, diskWrite, diskWrite,
                mmP, mmG, bmmP, bmmG, hbm, cpuAttention, 0, 0, 0, hostRates[0], hostRates[1], HardwareProfile.Schedule.TANDEM);
    }

    /**
     * MemTotal of /proc/meminfo, or {@code otherwise} where there is none. Not the management beans: the device
     * machine's jlink'd runtime has java.management but not jdk.management.
     */
    public static long physicalMemory(long otherwise) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemTotal:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        } catch (IOException | NumberFormatException e) {
            // fall through
        }
        return otherwise;
    }

    private static String hostName() {
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "this machine";
        }
    }
}
