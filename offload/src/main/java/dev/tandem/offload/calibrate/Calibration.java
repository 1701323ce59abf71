package dev.tandem.offload.calibrate;

import dev.tandem.core.backend.Backend;
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
     * @param seconds     time budget of each compute figure
     */
    public record Settings(ModelShape shape, Path diskDir, long diskBytes, int cpuSeqs, int gpuBatch, int promptLen, double seconds) {}

    private final Settings s;
    private final Consumer<String> log;
    private final List<String> measured = new ArrayList<>();

    public Calibration(Settings settings, Consumer<String> log) {
        this.s = settings;
        this.log = log;
    }

    /**
     * Runs the probes and returns the profile. {@code cpu} is the CPU backend; {@code gpu} the CUDA backend of the
     * device {@code ordinal}, or null to skip the GPU figures.
     */
    public HardwareProfile run(String name, HardwareProfile base, Backend cpu, Backend gpu, int ordinal) throws IOException {
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
            mmP = g.matmul(prefillRows, m.ffn(), m.hidden());
            mmG = g.matmul(s.gpuBatch, m.ffn(), m.hidden());
            bmmP = g.prefillAttention(s.promptLen, m.heads(), m.kvHeads(), m.headDim());
            bmmG = g.decodeAttention(s.gpuBatch, ctx, m.heads(), m.kvHeads(), m.headDim());
            log.accept(String.format(Locale.ROOT, "GPU matmul %d x %d x %d: %.1f TFLOP/s; %d rows: %.1f TFLOP/s", prefillRows, m.ffn(), m.hidden(),
                    mmP / 1e12, s.gpuBatch, mmG / 1e12));
            log.accept(String.format(Locale.ROOT, "GPU attention: prefill %d tokens %.1f TFLOP/s; decode %d seqs x %d ctx %.2f TFLOP/s",
                    s.promptLen, bmmP / 1e12, s.gpuBatch, ctx, bmmG / 1e12));
            measured.add("gpu copies, matmul, attention, memory bandwidth");
        }
        String source = String.format(Locale.ROOT, "tandem calibrate on %s, shapes of %s; measured: %s%s", hostName(), m.name(),
                String.join(", ", measured), gpu == null ? "; GPU constants from " + base.name() : "");
        // FlexGen's c1..c3 correct a CPU rate fitted at other batch sizes; this one is measured at the GPU batch used.
        return new HardwareProfile(name, source, gpuMem, cpuMem, diskMem, h2d, d2hCache, d2h, diskRead, diskWrite, diskWrite, diskWrite,
                mmP, mmG, bmmP, bmmG, hbm, cpuAttention, 0, 0, 0);
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
