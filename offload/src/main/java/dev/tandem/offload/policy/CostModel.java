package dev.tandem.offload.policy;

import static dev.tandem.offload.policy.Placement.CC;
import static dev.tandem.offload.policy.Placement.CG;
import static dev.tandem.offload.policy.Placement.HC;
import static dev.tandem.offload.policy.Placement.HG;
import static dev.tandem.offload.policy.Placement.WC;
import static dev.tandem.offload.policy.Placement.WG;

import java.util.List;

/**
 * FlexGen's cost model (Sheng et al., ICML 2023, section 4.2 and {@code experimental/cost_model.py}): the time of one
 * layer of one block in prefill and in decode, and the peak memory of each tier, as functions of the policy. Written
 * once as {@link Placement} terms (affine in the placement fractions) so that {@link #estimate} and the linear program
 * of {@link PolicySearch} use the very same formulas.
 *
 * <p>Notation (FlexGen's): s prompt length, n generated tokens, l layers, h1 hidden size, h2 MLP size, nh heads,
 * bls = block size (gbs x number of GPU batches), gbs GPU batch size; w*, c*, h* the fractions of weights, KV cache and
 * hidden states on g(pu), c(pu), n(vme / disk). In bytes: wi one layer's weights (8 h1^2 + 4 h1 h2 for OPT in fp16;
 * x 0.28125 when 4-bit compressed: 64 weights become 32 bytes of nibbles plus a 2-byte min and a 2-byte scale), kv one
 * token's K and V in one layer (4 h1; x 0.28125 compressed), hb one token's hidden state (2 h1). ctx = s + n/2, the
 * mean context of a decode step.
 *
 * <pre>
 * prefill, per layer and block (bandwidths in bytes/s, rates in FLOP/s):
 *   ctog = (wi (wc + wn) + hb s bls (hc + hn)) / cpuToGpu
 *   gtoc = kv (s + 1) bls (cc + cn) / gpuToCpuCache + hb s bls (hc + hn) / gpuToCpuHidden
 *   dtoc = (wi wn + hb s bls hn) / diskToCpu
 *   ctod = kv (s + 1) bls cn / cpuToDiskCachePrefill + hb s bls hn / cpuToDiskHiddenPrefill
 *   comp = 2 P s bls / gpuMatmulPrefill + 4 s^2 h1 bls / gpuBmmPrefill          (P: a layer's parameters)
 *   T_pre = max(ctog + dtoc, gtoc + ctod, comp)       (loads overlap stores and compute; a disk load then a PCIe load)
 * decode, per layer and block:
 *   ctog = (wi (wc + wn) + hb bls (hc + hn)) / cpuToGpu  [+ kv ctx bls (cc + cn) / cpuToGpu without CPU attention]
 *   gtoc = hb bls (hc + hn) / gpuToCpuHidden
 *   dtoc = (kv ctx bls cn + hb bls hn) / diskToCpu + wi wn / (0.95 diskToCpu)
 *   ctod = (kv bls cn + hb bls hn) / cpuToDiskDecode
 *   comp = max(2 P bls / gpuMatmulDecode, (bls / gbs) wi / gpuMemoryBandwidth)
 *          + 4 ctx kvd bls cg / gpuBmmDecode + 4 ctx kvd bls (cc + cn) / cpuAttention'
 *          (without CPU attention the whole cache's 4 ctx kvd bls goes to gpuBmmDecode)
 *   T_gen = ctog + max(gtoc, dtoc, ctod, comp)        (FlexGen's fit: the CPU-to-GPU copy does not overlap)
 * total = l T_pre + l (n - 1) T_gen; throughput = bls n / total (tokens/s, prefill time included).
 * cpuAttention' = cpuAttention max(0.1, 1 + c1 a b - c2 a - c3 b), a = max(0, log2(64 / gbs)), b = max(0, log2(4096 / h1)).
 * </pre>
 * The second term of the decode matmul is not FlexGen's: each GPU batch reads the layer's weights from device memory
 * once, which bounds small GPU batches (for FlexGen's own policies it is a few percent of the FLOP term and changes nothing).
 * Decode attention reads the whole cache once per step, so its work is counted over kvd = the K/V width (h1 for OPT,
 * where this is FlexGen's 4 ctx h1; smaller with grouped-query attention, whose cache is smaller by the same factor).
 *
 * <p>Peak memory (FlexGen's; home = what lives on the tier, working = buffers of one GPU batch in flight):
 * <pre>
 *   GPU prefill: wi l wg + hb s bls hg + kv (s+n) bls l cg  +  2 wi (1-wg) + hb s gbs (1-hg) + gbs e (9 s h1 + nh s^2 + s h2)
 *   GPU decode:  wi l wg + hb bls hg + kv (s+n) bls l cg  +  2 wi (1-wg) + hb gbs (1-hg) + kv gbs (s+n) a
  *                + gbs e (7 h1 + h2 + (2 h1 + 2 (s+n) h1 + nh (s+n)) a)        (a = cg; 1 + (1-cg) without CPU attention)
 *   CPU prefill: wi l wc + hb s bls hc + kv s bls l cc  +  wi (1-wg) + hb s gbs (1-hg)
 *   CPU decode:  wi l wc + hb bls hc + kv (s+n) bls l cc  +  wi wn + 2 hb gbs hn + 2 kv (s+n) gbs cn + e nh (s+n) gbs + hb gbs
 *   disk:        wi l wn + hb s bls hn + kv (s+n) bls l cn
 * </pre>
 * (e = bytes per element.) What FlexGen's model leaves out, this one does too: embeddings and the LM head, the
 * dequantization time of compressed tensors, and the CPU's own work moving data. (Tandem's schedule, below, charges
 * a compressed cache's GPU (de)compression as device-memory traffic.)
 *
 * <p>Under {@link HardwareProfile.Schedule#TANDEM} the same quantities are put together as Tandem's
 * {@code OffloadedGenerator} runs them (read from its code), which the overlap rules above do not describe:
 * <pre>
 * prefill, per layer and block:
 *   ctog = wi (wc + wn) / cpuToGpu (copy stream)        dtoc = wi wn / diskToCpu (I/O thread, one layer ahead)
 *   copies = (hc + hn) 4 h1 s bls (l-1)/l (1/cpuToGpu + 1/gpuToCpuHidden) + kv s bls (cc + cn) / gpuToCpuCache
 *            (f32 residual rows in and out of each layer, new K/V out: on the compute stream, in line)
 *   comp = 2 P s bls / gpuMatmulPrefill + 4 s^2 h1 bls / gpuBmmPrefill + copies
 *   T_pre = max(comp, dtoc, ctog + (hc + hn)(matmul + attention) + copies)
 *           (the layer's weight load and the compute stream's uploads share one host-to-device queue)
 * decode, per layer and block (the residual stream stays on the GPU):
 *   with CPU attention: attention = 4 ctx kvd bls (cg / gpuBmmDecode + (cc + cn) / hostAttention[bf16 | gq4]),
 *                       copies = (cc + cn) bls (4 (h1 + 2 kvd) / gpuToCpuHidden + 4 h1 / cpuToGpu), f = 1 - 1/nb
 *   without:            attention = 4 ctx kvd bls / gpuBmmDecode,
 *                       copies = (cc + cn) (kv ctx bls / cpuToGpu + kv bls / gpuToCpuCache), f = 1
 *   comp = matmul + attention + copies;  T_gen = max(comp, dtoc, ctog + f (cc + cn)(matmul + off-GPU attention) + f copies)
 *   (the GPU waits for CPU attention, batch by batch; the next layer's weights overlap all of it but what queues
 *   behind them: with CPU attention, everything after the first GPU batch's attention)
 * </pre>
 * The matmul rates meant here are a whole layer's ops outside attention (calibrate's layer probe), the CPU attention
 * rates the executor's {@code HostAttention} with its K/V stores (calibrate's host-attention probe). Tandem's executor
 * never keeps the KV cache or activations on disk, so its schedule has no terms for them and the search keeps them off.
 */
public final class CostModel {
    /** 4-bit groups of 64 with an fp16 min and scale, relative to fp16: (64 / 2 + 2 + 2) / (64 * 2). */
    public static final double COMPRESSED_RATIO = (64 / 2.0 + 4) / (64 * 2.0);

    private final ModelShape m;
    private final HardwareProfile hw;
    private final int s, n;

    public CostModel(ModelShape model, HardwareProfile hardware, int promptLen, int genLen) {
        if (promptLen < 1 || genLen < 1) {
            throw new IllegalArgumentException("prompt length and generation length must be at least 1, got " + promptLen + " and " + genLen);
        }
        if (promptLen + genLen > model.maxSeqLen()) {
            throw new IllegalArgumentException(model.name() + ": prompt " + promptLen + " + generation " + genLen
                    + " exceeds its context of " + model.maxSeqLen() + " tokens");
        }
        this.m = model;
        this.hw = hardware;
        this.s = promptLen;
        this.n = genLen;
    }

    public ModelShape model() { return m; }

    public HardwareProfile hardware() { return hw; }

    public int promptLen() { return s; }

    public int genLen() { return n; }

    /** The batching and the booleans of a policy: what the search enumerates around the LP. */
    public record Shape(int gpuBatchSize, int numGpuBatches, boolean compressWeight, boolean compressCache, boolean cpuCacheCompute) {
        public int blockSize() { return gpuBatchSize * numGpuBatches; }

        static Shape of(OffloadPolicy p) {
            return new Shape(p.gpuBatchSize(), p.numGpuBatches(), p.compressWeight(), p.compressCache(), p.cpuCacheCompute());
        }
    }

    /**
     * One phase's per-layer terms: the I/O directions, GPU matmuls, attention (on the GPU or the CPU), copies that run in
     * line with compute (Tandem's schedule: on the compute stream; none in FlexGen's), and the groups of them whose
     * maximum is the layer's time (each group's terms run one after the other, the groups overlap).
     */
    record Phase(Placement ctog, Placement gtoc, Placement dtoc, Placement ctod, Placement matmul, Placement attention,
                 Placement copies, List<Placement> bounds) {
        Placement comp() { return matmul.plus(attention).plus(copies); }

        double time(double[] x) {
            double t = 0;
            for (Placement b : bounds) t = Math.max(t, b.at(x));
            return t;
        }
    }

    /** Every term of the model for one {@link Shape}. */
    record Terms(Shape shape, Phase prefill, Phase decode,
                 Placement gpuPrefill, Placement gpuDecode, Placement cpuPrefill, Placement cpuDecode, Placement disk) {}

    Terms terms(Shape p) {
        double bls = p.blockSize(), gbs = p.gpuBatchSize();
        double wi = m.layerWeightBytes() * (p.compressWeight() ? COMPRESSED_RATIO : 1);
        double kv = m.kvBytesPerToken() * (p.compressCache() ? COMPRESSED_RATIO : 1);
        double hb = m.hiddenBytesPerToken(), e = m.bytesPerWeight();
        double h1 = m.hidden(), h2 = m.ffn(), nh = m.heads(), kvd = m.kvDim(), l = m.layers();
        double params = m.layerParameters(), ctx = s + n / 2.0;
        boolean cpuAttn = p.cpuCacheCompute();

        Placement wOff = Placement.offGpu(WG), wn = Placement.onDisk(WG);
        Placement cOff = Placement.offGpu(CG), cn = Placement.onDisk(CG), cg = Placement.var(CG);
        Placement hOff = Placement.offGpu(HG), hn = Placement.onDisk(HG);
        Placement wg = Placement.var(WG), hg = Placement.var(HG);

        Phase prefill, decode;
        if (hw.schedule() == HardwareProfile.Schedule.TANDEM) {
            prefill = tandemPrefill(p, wi, kv);
            decode = tandemDecode(p, wi, kv);
        } else {
            prefill = flexGenPhase(
                    wOff.times(wi).plus(hOff.times(hb * s * bls)).times(1 / hw.cpuToGpu()),
                    cOff.times(kv * (s + 1) * bls / hw.gpuToCpuCache()).plus(hOff.times(hb * s * bls / hw.gpuToCpuHidden())),
                    wn.times(wi).plus(hn.times(hb * s * bls)).times(1 / hw.diskToCpu()),
                    cn.times(kv * (s + 1) * bls / hw.cpuToDiskCachePrefill()).plus(hn.times(hb * s * bls / hw.cpuToDiskHiddenPrefill())),
                    Placement.of(2 * params * s * bls / hw.gpuMatmulPrefill()),
                    Placement.of(4 * (double) s * s * h1 * bls / hw.gpuBmmPrefill()), true);

            double attnWork = 4 * ctx * kvd * bls;
            Placement decodeCtog = wOff.times(wi).plus(hOff.times(hb * bls));
            if (!cpuAttn) decodeCtog = decodeCtog.plus(cOff.times(kv * ctx * bls));
            Placement decodeAttention = cpuAttn
                    ? cg.times(attnWork / hw.gpuBmmDecode()).plus(cOff.times(attnWork / cpuAttention(p.gpuBatchSize())))
                    : Placement.of(attnWork / hw.gpuBmmDecode());
            decode = flexGenPhase(
                    decodeCtog.times(1 / hw.cpuToGpu()),
                    hOff.times(hb * bls / hw.gpuToCpuHidden()),
                    cn.times(kv * ctx * bls).plus(hn.times(hb * bls)).times(1 / hw.diskToCpu()).plus(wn.times(wi / (0.95 * hw.diskToCpu()))),
                    cn.times(kv * bls).plus(hn.times(hb * bls)).times(1 / hw.cpuToDiskDecode()),
                    decodeMatmul(p, wi),
                    decodeAttention, false);
        }

        // Working sets of one GPU batch. Attention's share on the GPU: the GPU-resident cache, or all of it (one batch
        // streamed in while the previous one computes) when attention does not run on the CPU.
        Placement onGpuAttn = cpuAttn ? cg : Placement.of(2).minus(cg);
        Placement gpuPrefill = wg.times(wi * l).plus(hg.times(hb * s * bls)).plus(cg.times(kv * (s + n) * bls * l))
                .plus(wOff.times(2 * wi)).plus(hOff.times(hb * s * gbs))
                .plus(gbs * e * (9.0 * s * h1 + nh * s * s + (double) s * h2));
        Placement gpuDecode = wg.times(wi * l).plus(hg.times(hb * bls)).plus(cg.times(kv * (s + n) * bls * l))
                .plus(wOff.times(2 * wi)).plus(hOff.times(hb * gbs)).plus(onGpuAttn.times(kv * gbs * (s + n)))
                .plus(onGpuAttn.times(gbs * e * (2 * h1 + 2 * (s + n) * h1 + nh * (s + n))))
                .plus(gbs * e * (7 * h1 + h2));
        Placement cpuPrefill = Placement.var(WC).times(wi * l).plus(Placement.var(HC).times(hb * s * bls))
                .plus(Placement.var(CC).times(kv * s * bls * l)).plus(wOff.times(wi)).plus(hOff.times(hb * s * gbs));
        Placement cpuDecode = Placement.var(WC).times(wi * l).plus(Placement.var(HC).times(hb * bls))
                .plus(Placement.var(CC).times(kv * (s + n) * bls * l))
                .plus(wn.times(wi)).plus(hn.times(2 * hb * gbs)).plus(cn.times(2 * kv * (s + n) * gbs))
                .plus(e * nh * (s + n) * gbs + hb * gbs);
        Placement disk = wn.times(wi * l).plus(hn.times(hb * s * bls)).plus(cn.times(kv * (s + n) * bls * l));
        return new Terms(p, prefill, decode, gpuPrefill, gpuDecode, cpuPrefill, cpuDecode, disk);
    }

    /**
     * FlexGen's overlap: prefill max(ctog + dtoc, gtoc + ctod, comp); decode ctog + max(gtoc, dtoc, ctod, comp) (its
     * fit: the CPU-to-GPU copy of a decode step does not overlap).
     */
    private static Phase flexGenPhase(Placement ctog, Placement gtoc, Placement dtoc, Placement ctod, Placement matmul, Placement attention,
                                      boolean prefill) {
        Placement comp = matmul.plus(attention);
        List<Placement> bounds = prefill
                ? List.of(ctog.plus(dtoc), gtoc.plus(ctod), comp)
                : List.of(ctog.plus(gtoc), ctog.plus(dtoc), ctog.plus(ctod), ctog.plus(comp));
        return new Phase(ctog, gtoc, dtoc, ctod, matmul, attention, Placement.of(0), bounds);
    }

    /** A decode step's GPU matmuls: the FLOP rate, or each GPU batch reading the layer's weights once, whichever is slower. */
    private Placement decodeMatmul(Shape p, double wi) {
        return Placement.of(Math.max(2 * m.layerParameters() * (double) p.blockSize() / hw.gpuMatmulDecode(),
                p.numGpuBatches() * wi / hw.gpuMemoryBandwidth()));
    }

    /**
     * Prefill as Tandem's executor runs it. Weights stream on a copy stream (ctog) and from disk on an I/O thread one
     * layer ahead (dtoc). Everything else is in line on the compute stream: the matmuls and attention, and with
     * activations on the CPU each segment's residual stream (f32 rows) copied in before the layer and out after it, and
     * for layers whose cache lives on the CPU the new K and V copied out. The layer's weight load is issued as the layer
     * starts, and the host-to-device copies of both streams go through one queue: the first residual upload waits for
     * it, and the layer's compute behind that upload.
     */
    private Phase tandemPrefill(Shape p, double wi, double kv) {
        double bls = p.blockSize(), l = m.layers(), h1 = m.hidden();
        Placement wOff = Placement.offGpu(WG), hOff = Placement.offGpu(HG), cOff = Placement.offGpu(CG);
        Placement ctog = wOff.times(wi / hw.cpuToGpu()), dtoc = Placement.onDisk(WG).times(wi / hw.diskToCpu());
        double residual = 4 * h1 * s * bls * (l - 1) / l;  // f32 rows; the first layer does not read them, the last does not write
        // The new K and V of layers whose cache is on the CPU go out, compressed first where the cache is, then
        // decompressed back into the GPU's slots (prefill attends on the GPU whatever the policy), so that attention
        // sees what the cache holds.
        double codec = p.compressCache() ? 2 * s * bls * (m.kvBytesPerToken() + kv) / hw.gpuMemoryBandwidth() : 0;
        Placement copies = hOff.times(residual / hw.cpuToGpu() + residual / hw.gpuToCpuHidden())
                .plus(cOff.times(kv * s * bls / hw.gpuToCpuCache() + codec));
        double matmul = 2 * m.layerParameters() * s * bls / hw.gpuMatmulPrefill(), attention = 4 * (double) s * s * h1 * bls / hw.gpuBmmPrefill();
        Placement comp = copies.plus(matmul + attention);
        Placement queued = ctog.plus(hOff.times(matmul + attention)).plus(copies);
        return new Phase(ctog, Placement.of(0), dtoc, Placement.of(0), Placement.of(matmul), Placement.of(attention), copies,
                List.of(comp, dtoc, queued));
    }

    /**
     * A decode step as Tandem's executor runs it: the residual stream stays on the GPU. For layers whose cache lives on
     * the CPU, with attention on the CPU each GPU batch's q|k|v rows go to the host, the host stores K and V into the
     * cache and runs {@code HostAttention} (at the calibrated rate for the cache's format, the store included) while the
     * GPU waits, and the result comes back; without it, the batch's cached K and V are uploaded on the compute stream
     * and the new ones copied back. Weights stream as in prefill, and the layer's weight load again holds up the
     * host-to-device queue: with CPU attention the first GPU batch's attention overlaps it, later ones wait; without, the
     * first cache upload waits and all behind it.
     */
    private Phase tandemDecode(Shape p, double wi, double kv) {
        double bls = p.blockSize(), nb = p.numGpuBatches(), ctx = s + n / 2.0, attnWork = 4 * ctx * m.kvDim() * bls;
        Placement wOff = Placement.offGpu(WG), cOff = Placement.offGpu(CG), cg = Placement.var(CG);
        Placement ctog = wOff.times(wi / hw.cpuToGpu()), dtoc = Placement.onDisk(WG).times(wi / hw.diskToCpu());
        Placement matmul = decodeMatmul(p, wi);
        double mm = matmul.constant;
        Placement attention, copies, offGpuWork;
        double queuedShare;
        if (p.cpuCacheCompute()) {
            double rate = p.compressCache() ? hw.hostAttentionGq4() : hw.hostAttentionBf16();
            double qkvRow = 4.0 * (m.hidden() + 2 * m.kvDim()), attRow = 4.0 * m.hidden();
            attention = cg.times(attnWork / hw.gpuBmmDecode()).plus(cOff.times(attnWork / rate));
            copies = cOff.times(bls * (qkvRow / hw.gpuToCpuHidden() + attRow / hw.cpuToGpu()));
            offGpuWork = cOff.times(mm + attnWork / rate);
            queuedShare = 1 - 1 / nb;
        } else {
            // A compressed cache is decompressed on the GPU before attention reads it (the packed bytes read, the
            // uncompressed ones written), and the new K and V compressed before they go back: device-memory traffic.
            double codec = p.compressCache() ? (ctx + 1) * bls * (m.kvBytesPerToken() + kv) / hw.gpuMemoryBandwidth() : 0;
            attention = Placement.of(attnWork / hw.gpuBmmDecode()).plus(cOff.times(codec));
            copies = cOff.times(kv * ctx * bls / hw.cpuToGpu() + kv * bls / hw.gpuToCpuCache());
            offGpuWork = cOff.times(mm + attnWork / hw.gpuBmmDecode() + codec);
            queuedShare = 1;
        }
        Placement comp = matmul.plus(attention).plus(copies);
        Placement queued = ctog.plus(offGpuWork.plus(copies).times(queuedShare));
        return new Phase(ctog, Placement.of(0), dtoc, Placement.of(0), matmul, attention, copies, List.of(comp, dtoc, queued));
    }

    /** FlexGen's fitted CPU attention rate: slower for small GPU batches and small hidden sizes. */
    double cpuAttention(int gbs) {
        double a = Math.max(0, log2(64.0 / gbs)), b = Math.max(0, log2(4096.0 / m.hidden()));
        return hw.cpuAttention() * Math.max(0.1, 1 + hw.cpuC1() * a * b - hw.cpuC2() * a - hw.cpuC3() * b);
    }

    private static double log2(double x) { return Math.log(x) / Math.log(2); }


    /** The model's prediction for a policy (its memory is not checked against the capacities: see {@link Estimate#fits}). */
    public Estimate estimate(OffloadPolicy policy) {
        if (hw.schedule() == HardwareProfile.Schedule.TANDEM && (policy.cacheDiskPercent() > 1e-9 || policy.actDiskPercent() > 1e-9)) {
            throw new IllegalArgumentException("policy " + policy.format() + ": Tandem's executor keeps the KV cache and activations "
                    + "on the GPU or the CPU, not on disk (hardware profile " + hw.name() + " describes Tandem's schedule)");
        }
        return estimate(terms(Shape.of(policy)), fractions(policy), policy);
    }

    Estimate estimate(Terms t, double[] x, OffloadPolicy policy) {
        double tpre = t.prefill.time(x), tgen = t.decode.time(x);
        double l = m.layers();
        double prefillTotal = l * tpre, decodeTotal = l * (n - 1) * tgen;
        double throughput = t.shape.blockSize() * (double) n / (prefillTotal + decodeTotal);
        return new Estimate(this, policy, throughput, prefillTotal, decodeTotal,
                Estimate.PhaseTimes.of(t.prefill, x, tpre), Estimate.PhaseTimes.of(t.decode, x, tgen),
                t.gpuPrefill.at(x), t.gpuDecode.at(x), t.cpuPrefill.at(x), t.cpuDecode.at(x), t.disk.at(x));
    }

    static double[] fractions(OffloadPolicy p) {
        double[] x = new double[Placement.N];
        x[WG] = p.weightGpuPercent() / 100;
        x[WC] = p.weightCpuPercent() / 100;
        x[CG] = p.cacheGpuPercent() / 100;
        x[CC] = p.cacheCpuPercent() / 100;
        x[HG] = p.actGpuPercent() / 100;
        x[HC] = p.actCpuPercent() / 100;
        return x;
    }
}
