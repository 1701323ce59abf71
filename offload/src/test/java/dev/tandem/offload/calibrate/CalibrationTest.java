package dev.tandem.offload.calibrate;

import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.backend.cpu.CpuThreadPool;
import dev.tandem.core.format.hf.HfConfig;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.offload.exec.HostKvCache;
import dev.tandem.offload.exec.OptProgram;
import dev.tandem.offload.exec.SyntheticWeights;
import dev.tandem.cuda.CudaDriver;
import dev.tandem.offload.policy.HardwareProfile;
import dev.tandem.offload.policy.ModelShape;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The probes on this machine, with small sizes: they run, produce plausible figures and leave nothing behind. */
class CalibrationTest {

    @Test
    void cpuOnlyCalibrationMeasuresDiskAndCpuAndKeepsTheBaseGpuFigures(@TempDir Path dir) throws Exception {
        ModelShape small = ModelShape.resolve(System.getProperty("tandem.shared", "../../shared") + "/models/gutenberg-stories-llama-25m");
        List<String> log = new ArrayList<>();
        HardwareProfile base = HardwareProfile.h200();
        HardwareProfile p;
        try (CpuBackend cpu = new CpuBackend(2)) {
            p = new Calibration(new Calibration.Settings(small, dir, 16 << 20, 2, 4, 64, 8, 32 << 20, 256, 0.5), log::add)
                    .run("test", base, cpu, null, 0);
        }
        try (var files = Files.list(dir)) {
            assertEquals(0, files.count(), "the disk probe's file is deleted");
        }
        // (CPU attention: a loose floor. At this tiny shape a call is 0.2 MFLOP, and on the shared 2-core machine under a
        // load of 12 a call's thread hand-offs alone take tens of ms; the figure only means something on a quiet host.)
        // a disk slower than 10 MB/s or faster than 100 GB/s would mean a broken measurement, not a slow machine
        assertTrue(p.diskToCpu() > 1e7 && p.diskToCpu() < 1e11, "disk read " + p.diskToCpu());
        assertTrue(p.cpuToDiskDecode() > 1e7 && p.cpuToDiskDecode() < 1e11, "disk write " + p.cpuToDiskDecode());
        assertTrue(p.cpuAttention() > 1e5 && p.cpuAttention() < 1e13, "CPU attention " + p.cpuAttention());
        assertEquals(base.cpuToGpu(), p.cpuToGpu());
        assertEquals(base.gpuMatmulPrefill(), p.gpuMatmulPrefill());
        assertTrue(log.stream().anyMatch(l -> l.startsWith("GPU figures skipped")), String.join("\n", log));
        assertTrue(p.source().contains("measured: disk, cpu_attention, host_attention"), p.source());
        assertTrue(p.hostAttentionBf16() > 1e5 && p.hostAttentionBf16() < 1e13, "host attention bf16 " + p.hostAttentionBf16());
        assertTrue(p.hostAttentionGq4() > 1e5 && p.hostAttentionGq4() < 1e13, "host attention GQ4 " + p.hostAttentionGq4());
        assertEquals(HardwareProfile.Schedule.TANDEM, p.schedule());
        assertTrue(log.stream().anyMatch(l -> l.startsWith("CPU attention as the executor runs it (HostAttention, GQ4")), String.join("\n", log));
    }

    @Test
    void hostAttentionProbeWalksACacheLargerThanAsked() {
        try (CpuThreadPool pool = new CpuThreadPool(2, 0)) {
            HostAttentionProbe probe = new HostAttentionProbe(pool, 0.2);
            for (HostKvCache.Format f : new HostKvCache.Format[]{HostKvCache.Format.BF16, HostKvCache.Format.GQ4}) {
                // 4 seqs x 64 slots x (2 KV heads of 64) x 2 bytes x K and V = 128 KiB a layer (bf16), so 8 MiB takes 64 layers
                HostAttentionProbe.Rate r = probe.measure(f, 4, 40, 64, 8, 2, 64, 8 << 20);
                assertTrue(r.cacheBytes() >= 8 << 20 && r.cacheBytes() < (8 << 20) + 2 * 4 * 64 * HostKvCache.slotBytes(2, 64, f) * 2,
                        f + " cache " + r.cacheBytes());
                assertTrue(r.flops() > 1e5 && r.flops() < 1e13, f + " " + r.flops());
            }
            assertThrows(IllegalArgumentException.class, () -> probe.measure(HostKvCache.Format.BF16, 4, 65, 64, 8, 2, 64, 1));
        }
    }

    @Test
    void layerProbeTimesTheExecutorsLayerOps() {
        // The 25M model's layer on the CPU backend (unstacked, as the CPU path runs it), synthetic weights.
        ModelConfig c = HfConfig.read(Path.of(System.getProperty("tandem.shared", "../../shared") + "/models/gutenberg-stories-llama-25m/config.json"));
        try (CpuBackend cpu = new CpuBackend(2)) {
            double rate = new BackendProbe(cpu, 0.3).layer(OptProgram.synthetic(new SyntheticWeights(c, 1), false), 16, false);
            assertTrue(rate > 1e7 && rate < 1e13, "layer " + rate);
        }
    }

    @Test
    void layerProbeOnTheGpuWithStackedProducts() {
        Assumptions.assumeTrue(CudaDriver.unavailableReason() == null, "no CUDA device");
        ModelConfig c = HfConfig.read(Path.of(System.getProperty("tandem.shared", "../../shared") + "/models/gutenberg-stories-llama-25m/config.json"));
        try (var gpu = new dev.tandem.cuda.backend.CudaBackend(0, dev.tandem.cuda.backend.CudaBackend.Precision.BF16, false)) {
            BackendProbe probe = new BackendProbe(gpu, 0.3);
            double prefill = probe.layer(OptProgram.synthetic(new SyntheticWeights(c, 1), true), 2048, true);
            double decode = probe.layer(OptProgram.synthetic(new SyntheticWeights(c, 1), true), 48, true);
            // a tiny layer: launch-bound, far below the GEMM peak, but more rows must not be slower per row
            assertTrue(prefill > 1e10 && prefill < 2e15, "prefill layer " + prefill);
            assertTrue(decode > 1e8 && decode < prefill, "decode layer " + decode + " vs prefill " + prefill);
        }
    }

    @Test
    void pinnedCopiesBothWaysOnTheGpu() {
        Assumptions.assumeTrue(CudaDriver.unavailableReason() == null, "no CUDA device");
        TransferProbe.Rates r = TransferProbe.measure(0, 256L << 20, 3);
        // PCIe 3 x16 moves about 12 GB/s, PCIe 5 about 55; pageable memory would be well under 10
        assertTrue(r.hostToDevice() > 5e9 && r.hostToDevice() < 200e9, "H2D " + r.hostToDevice());
        assertTrue(r.deviceToHost() > 5e9 && r.deviceToHost() < 200e9, "D2H " + r.deviceToHost());
        assertTrue(r.deviceMemory() > r.hostToDevice(), "device memory " + r.deviceMemory());
    }
}
