package dev.tandem.offload.policy;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The cost model against FlexGen's own: the expected figures are FlexGen's experimental/cost_model.py evaluated for the
 * same inputs (its formulas and CostModelConfig constants, with its LP solved by scipy's HiGHS in a scratch run:
 * {@code python cost_model.py --model facebook/opt-30b --prompt-len 512 --gen-len 32 --gpu-mem 16 --cpu-mem 208
 * --nvme-mem 1500 --gpu-batch-size 48 --num-gpu-batches 3 --percent 20 80 0 100 0 100 --alpha-g 1.2 --alpha-c 1.2 --alpha-n 1.2}).
 */
class CostModelTest {
    static final double GIB = HardwareProfile.GIB;

    static CostModel opt30bOnT4() {
        HardwareProfile t4 = HardwareProfile.t4FlexGen().withMemory(16L << 30, 208L << 30, 1500L << 30);
        return new CostModel(ModelShape.known("opt-30b"), t4, 512, 32);
    }

    @Test
    void publishedOpt30bPolicyMatchesFlexGensOwnCostModel() {
        Estimate e = opt30bOnT4().estimate(OffloadPolicy.parse("48 3 20 80 0 100 0 100 cpu-cache-compute"));
        // FlexGen's cost_model.py: Tpre 4.3890 s, Tgen 0.2924 s per layer, T = 645.764 s, 7.14 tokens/s.
        assertEquals(4.3890, e.prefill().layer(), 5e-4);
        assertEquals(0.2924, e.decode().layer(), 5e-4);
        assertEquals(645.764, e.totalSeconds(), 0.05);
        assertEquals(7.1358, e.tokensPerSecond(), 0.001);
        // its per-term figures: prefill gtoc 2.2378, comp 4.3890; decode ctog 0.0714, comp 0.2210
        assertEquals(2.2378, e.prefill().gpuToCpu(), 5e-4);
        assertEquals(0.0714, e.decode().cpuToGpu(), 5e-4);
        assertEquals(0.2210, e.decode().gpuMatmul() + e.decode().attention(), 5e-4);
        // peak memory as FlexGen prints it: GPU 18.769 GB (prefill) and 12.870 (decode), CPU 140.831 and 144.512
        assertEquals(18.769, e.gpuPeakPrefill() / GIB, 0.002);
        assertEquals(12.870, e.gpuPeakDecode() / GIB, 0.002);
        assertEquals(140.831, e.cpuPeakPrefill() / GIB, 0.002);
        assertEquals(144.512, e.cpuPeakDecode() / GIB, 0.002);
        // FlexGen's published run of this policy on the T4: 7.32 tokens/s.
        assertEquals(7.32, e.tokensPerSecond(), 0.05 * 7.32);
        // and FlexGen's model says this policy overshoots 0.8 of the 16 GB GPU (hence its alpha 1.2 for this check)
        assertFalse(e.fits(0.8));
        assertTrue(e.fits(1.2));
        assertTrue(e.bottleneck().startsWith("decode"), e.bottleneck());
    }

    @Test
    void fourBitCompressionMovesAQuarterOfTheBytesPlusScales() {
        CostModel m = opt30bOnT4();
        // activations and KV on the GPU, so the decode CPU->GPU copy is the weights alone
        Estimate plain = m.estimate(OffloadPolicy.parse("8 1 0 100 100 0 100 0"));
        Estimate packed = m.estimate(OffloadPolicy.parse("8 1 0 100 100 0 100 0 compress-weight"));
        assertEquals(0.28125, packed.decode().cpuToGpu() / plain.decode().cpuToGpu(), 1e-12);
        assertEquals(m.model().layerWeightBytes() / m.hardware().cpuToGpu(), plain.decode().cpuToGpu(), 1e-12);
        // KV compressed: the cache's share of CPU memory shrinks by the same factor
        Estimate kv = m.estimate(OffloadPolicy.parse("8 1 0 100 0 100 100 0"));
        Estimate kv4 = m.estimate(OffloadPolicy.parse("8 1 0 100 0 100 100 0 compress-cache"));
        double weightsOnCpu = 48 * m.model().layerWeightBytes();
        assertEquals(0.28125, (kv4.cpuPeakDecode() - weightsOnCpu) / (kv.cpuPeakDecode() - weightsOnCpu), 0.01);
    }

    @Test
    void attentionOnTheGpuStreamsTheCacheInsteadOfComputingOnTheCpu() {
        CostModel m = opt30bOnT4();
        Estimate cpu = m.estimate(OffloadPolicy.parse("48 3 20 80 0 100 0 100 cpu-cache-compute"));
        Estimate gpu = m.estimate(OffloadPolicy.parse("48 3 20 80 0 100 0 100"));
        double cacheBytes = 4.0 * 7168 * (512 + 16) * 144;  // kv per token x mean decode context x block
        assertEquals(cacheBytes / m.hardware().cpuToGpu(), gpu.decode().cpuToGpu() - cpu.decode().cpuToGpu(), 1e-9);
        assertEquals(4.0 * (512 + 16) * 7168 * 144 / m.hardware().gpuBmmDecode(), gpu.decode().attention(), 1e-9);
        assertTrue(gpu.gpuPeakDecode() > cpu.gpuPeakDecode());
    }
}
