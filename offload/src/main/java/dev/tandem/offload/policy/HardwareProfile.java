package dev.tandem.offload.policy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.function.ToDoubleFunction;

/**
 * One machine's memory per tier and the constants of FlexGen's cost model, in bytes, bytes/s and FLOP/s. Built in:
 * {@code t4-flexgen} (the constants FlexGen's {@code experimental/cost_model.py} fitted on its Google Cloud T4 machine,
 * so that Tandem's search can be checked against FlexGen's on the same inputs) and {@code h200} (from figures measured
 * on Tandem's H200 machine, others derived, see {@link #source}). Files (JSON or YAML) use GiB/s and TFLOP/s, the units
 * FlexGen writes its constants in; {@code tandem calibrate} writes them.
 *
 * <p>FlexGen fits separate bandwidths for the directions and kinds of transfer because they differ in practice: a
 * GPU-to-CPU copy of a strided KV slice into unpinned memory is far slower than a pinned weight copy.
 *
 * @param source                 where the figures come from (measured, published, derived)
 * @param cpuToGpu               ctog_bdw: CPU to GPU (weights, activations, KV when attention is on the GPU)
 * @param gpuToCpuCache          gtoc_bdw_cache: GPU to CPU, KV cache written during prefill
 * @param gpuToCpuHidden         gtoc_bdw_hidden: GPU to CPU, hidden states
 * @param diskToCpu              dtoc_bdw: disk to CPU
 * @param cpuToDiskCachePrefill  ctod_bdw_cache_p: CPU to disk, KV cache during prefill
 * @param cpuToDiskHiddenPrefill ctod_bdw_hidden_p: CPU to disk, hidden states during prefill
 * @param cpuToDiskDecode        ctod_bdw_g: CPU to disk during decode
 * @param gpuMatmulPrefill       mm_flops_p: GPU matmul FLOP/s at prefill shapes
 * @param gpuMatmulDecode        mm_flops_g: GPU matmul FLOP/s at decode shapes (GPU-batch rows)
 * @param gpuBmmPrefill          bmm_flops_p: GPU attention (batched matmul) FLOP/s in prefill
 * @param gpuBmmDecode           bmm_flops_g: GPU attention FLOP/s in decode (bound by reading the cache)
 * @param gpuMemoryBandwidth     not in FlexGen's model: device memory read rate, which bounds a decode matmul of a
 *                               small GPU batch (each GPU batch reads the layer's weights once; FlexGen's FLOP rate
 *                               alone would make a GPU batch of one look as fast per token as one of 64)
 * @param cpuAttention           cpu_flops: CPU attention FLOP/s in decode (bound by reading the cache)
 * @param cpuC1                  c1, c2, c3: FlexGen's fitted penalty of CPU attention for small GPU batches and
 *                               hidden sizes (0 when the figure was measured at the shape that matters)
 * @param hostAttentionBf16      Tandem's {@code HostAttention} over a bf16 host cache, FLOP/s counted as cpuAttention
 *                               is (4 ctx kvd per query row), the row's K/V store into the cache included; the rate
 *                               the {@link Schedule#TANDEM} schedule charges for CPU attention over an uncompressed cache
 * @param hostAttentionGq4       the same over a 4-bit (GQ4) host cache
 * @param schedule               whose overlap rules the cost model applies: FlexGen's runtime (as its model fits it) or
 *                               Tandem's executor
 */
public record HardwareProfile(String name, String source,
                              long gpuMemory, long cpuMemory, long diskMemory,
                              double cpuToGpu, double gpuToCpuCache, double gpuToCpuHidden,
                              double diskToCpu, double cpuToDiskCachePrefill, double cpuToDiskHiddenPrefill, double cpuToDiskDecode,
                              double gpuMatmulPrefill, double gpuMatmulDecode, double gpuBmmPrefill, double gpuBmmDecode,
                              double gpuMemoryBandwidth, double cpuAttention, double cpuC1, double cpuC2, double cpuC3,
                              double hostAttentionBf16, double hostAttentionGq4, Schedule schedule) {

    /**
     * Which runtime's overlap the time formulas describe. FLEXGEN: FlexGen's cost model as published (its fitted rules:
     * in decode the CPU-to-GPU copy does not overlap, every other transfer does). TANDEM: what Tandem's
     * {@code OffloadedGenerator} does, read from its code (see {@link CostModel}).
     */
    public enum Schedule {
        FLEXGEN, TANDEM;

        static Schedule parse(String s, Path file) {
            try {
                return valueOf(s.toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(file + ": 'schedule' must be flexgen or tandem, got '" + s + "'");
            }
        }
    }

    /** FlexGen's GB (flexgen/utils.py): 2^30 bytes. */
    public static final double GIB = 1L << 30;
    public static final double TERA = 1e12;

    public HardwareProfile {
        java.util.Objects.requireNonNull(schedule, "hardware profile " + name + ": schedule");
        double[] v = {gpuMemory, cpuMemory, diskMemory, cpuToGpu, gpuToCpuCache, gpuToCpuHidden, diskToCpu, cpuToDiskCachePrefill,
                cpuToDiskHiddenPrefill, cpuToDiskDecode, gpuMatmulPrefill, gpuMatmulDecode, gpuBmmPrefill, gpuBmmDecode,
                gpuMemoryBandwidth, cpuAttention, hostAttentionBf16, hostAttentionGq4};
        for (int i = 0; i < v.length; i++) {  // in the order of CONSTANTS; the c's may be zero or negative
            if (!(v[i] > 0) || Double.isInfinite(v[i])) {
                throw new IllegalArgumentException("hardware profile " + name + ": " + KEYS[i] + " must be positive, got " + v[i]);
            }
        }
    }

    /** Keys of the positive constants, in the record's order (CONSTANTS is not yet initialised when this is needed). */
    private static final String[] KEYS = {"gpu_memory_gib", "cpu_memory_gib", "disk_memory_gib", "cpu_to_gpu_gib_s",
            "gpu_to_cpu_cache_gib_s", "gpu_to_cpu_hidden_gib_s", "disk_to_cpu_gib_s", "cpu_to_disk_cache_prefill_gib_s",
            "cpu_to_disk_hidden_prefill_gib_s", "cpu_to_disk_decode_gib_s", "gpu_matmul_prefill_tflops", "gpu_matmul_decode_tflops",
            "gpu_bmm_prefill_tflops", "gpu_bmm_decode_tflops", "gpu_memory_bandwidth_gib_s", "cpu_attention_tflops",
            "host_attention_bf16_tflops", "host_attention_gq4_tflops"};

    /**
     * A constant as files name it, with its unit. {@code fallback} names the earlier constant that stands in for it
     * when a file lacks it (null: required): profiles written before the host-attention probe still load.
     */
    private record Constant(String key, double unit, ToDoubleFunction<HardwareProfile> get, String fallback) {
        Constant(String key, double unit, ToDoubleFunction<HardwareProfile> get) { this(key, unit, get, null); }
    }

    private static final List<Constant> CONSTANTS = List.of(
            new Constant("gpu_memory_gib", GIB, HardwareProfile::gpuMemory),
            new Constant("cpu_memory_gib", GIB, HardwareProfile::cpuMemory),
            new Constant("disk_memory_gib", GIB, HardwareProfile::diskMemory),
            new Constant("cpu_to_gpu_gib_s", GIB, HardwareProfile::cpuToGpu),
            new Constant("gpu_to_cpu_cache_gib_s", GIB, HardwareProfile::gpuToCpuCache),
            new Constant("gpu_to_cpu_hidden_gib_s", GIB, HardwareProfile::gpuToCpuHidden),
            new Constant("disk_to_cpu_gib_s", GIB, HardwareProfile::diskToCpu),
            new Constant("cpu_to_disk_cache_prefill_gib_s", GIB, HardwareProfile::cpuToDiskCachePrefill),
            new Constant("cpu_to_disk_hidden_prefill_gib_s", GIB, HardwareProfile::cpuToDiskHiddenPrefill),
            new Constant("cpu_to_disk_decode_gib_s", GIB, HardwareProfile::cpuToDiskDecode),
            new Constant("gpu_matmul_prefill_tflops", TERA, HardwareProfile::gpuMatmulPrefill),
            new Constant("gpu_matmul_decode_tflops", TERA, HardwareProfile::gpuMatmulDecode),
            new Constant("gpu_bmm_prefill_tflops", TERA, HardwareProfile::gpuBmmPrefill),
            new Constant("gpu_bmm_decode_tflops", TERA, HardwareProfile::gpuBmmDecode),
            new Constant("gpu_memory_bandwidth_gib_s", GIB, HardwareProfile::gpuMemoryBandwidth),
            new Constant("cpu_attention_tflops", TERA, HardwareProfile::cpuAttention),
            new Constant("cpu_attention_c1", 1, HardwareProfile::cpuC1),
            new Constant("cpu_attention_c2", 1, HardwareProfile::cpuC2),
            new Constant("cpu_attention_c3", 1, HardwareProfile::cpuC3),
            new Constant("host_attention_bf16_tflops", TERA, HardwareProfile::hostAttentionBf16, "cpu_attention_tflops"),
            new Constant("host_attention_gq4_tflops", TERA, HardwareProfile::hostAttentionGq4, "host_attention_bf16_tflops"));

    private static int indexOf(String key) {
        for (int i = 0; i < CONSTANTS.size(); i++) if (CONSTANTS.get(i).key.equals(key)) return i;
        throw new IllegalStateException("no constant " + key);
    }

    private static HardwareProfile of(String name, String source, double[] v, Schedule schedule) {
        return new HardwareProfile(name, source, (long) v[0], (long) v[1], (long) v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9],
                v[10], v[11], v[12], v[13], v[14], v[15], v[16], v[17], v[18], v[19], v[20], schedule);
    }

    /**
     * FlexGen's CostModelConfig defaults, "aligned on google cloud T4" (16 GB T4, 208 GB RAM, 1.5 TB NVMe); the GPU memory
     * bandwidth, which FlexGen's model lacks, is the T4 datasheet's 320 GB/s derated to 300.
     */
    public static HardwareProfile t4FlexGen() {
        double g = GIB, t = TERA;
        return of("t4-flexgen", "FlexGen experimental/cost_model.py CostModelConfig (fitted on a GCP T4 machine)", new double[]{
                16 * g, 208 * g, 1500 * g,
                12.89 * g, 0.97 * g, 4.82 * g,
                0.473 * g, 0.746 * g, 2.015 * g, 2.015 * g,
                21.24 * t, 4.3 * t, 9.97 * t, 0.079 * t,
                300e9, 0.0123 * t, 0.0168, 0.0328, 0.0621, 0.0123 * t, 0.0123 * t}, Schedule.FLEXGEN);
    }

    /**
     * One H200 (141 GB) in Tandem's device machine (128 GiB RAM, 64 GiB disk). Measured there: host-to-device pinned
     * copies 55 GB/s, bf16 cuBLASLt GEMM 761 TFLOP/s, flash attention in prefill 80-122 TFLOP/s (BENCHMARKS.md); HBM 4.8 TB/s (datasheet). Derived:
     * CPU attention 15.6 GFLOP/s from FlexGen's own run on the 2xH200 host (issue 7: a decode step over the 100 GB cache
     * took 6.7 s); decode GEMM at a fifth of the prefill rate and decode attention at 4 TFLOP/s (4.8 TB/s HBM read at
     * 1 FLOP/byte), as on FlexGen's T4 where decode reaches a fifth of prefill. Assumed until {@code tandem calibrate}
     * runs there: device-to-host as host-to-device, and NVMe at 2 GB/s both ways.
     */
    public static HardwareProfile h200() {
        double g = GIB, t = TERA;
        return of("h200", "H2D 55 GB/s and bf16 GEMM 761 TFLOP/s measured; CPU attention derived from FlexGen's H200 run "
                + "(issue 7); D2H, disk and decode rates assumed, see HardwareProfile.h200()", new double[]{
                141e9, 128 * g, 64 * g,
                55e9, 55e9, 55e9,
                2e9, 2e9, 2e9, 2e9,
                761 * t, 152 * t, 100 * t, 4 * t,
                4.8e12, 0.0156 * t, 0, 0, 0, 0.0156 * t, 0.0156 * t}, Schedule.FLEXGEN);
    }

    /** A built-in profile by name, or a JSON / YAML file. */
    public static HardwareProfile resolve(String nameOrFile) {
        return switch (nameOrFile) {
            case "t4-flexgen" -> t4FlexGen();
            case "h200" -> h200();
            default -> {
                Path p = Path.of(nameOrFile);
                if (!Files.isRegularFile(p)) {
                    throw new IllegalArgumentException("hardware '" + nameOrFile + "': not a built-in profile (t4-flexgen, h200) nor a file");
                }
                yield load(p);
            }
        };
    }

    private static ObjectMapper mapper(Path p) {
        String f = p.getFileName().toString().toLowerCase(Locale.ROOT);
        return f.endsWith(".yaml") || f.endsWith(".yml") ? new ObjectMapper(new YAMLFactory()) : new ObjectMapper();
    }

    /**
     * Reads a profile file; every constant is required but the host-attention rates (missing: the CPU attention rate
     * stands in) and the schedule (missing: flexgen, the formulas such files were written for), and the error names the
     * missing one and the file.
     */
    public static HardwareProfile load(Path file) {
        JsonNode n;
        try {
            n = mapper(file).readTree(Files.readString(file));
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read hardware profile: " + e.getMessage(), e);
        }
        if (n == null || !n.isObject()) throw new IllegalArgumentException(file + ": not a JSON / YAML object");
        double[] v = new double[CONSTANTS.size()];
        for (int i = 0; i < v.length; i++) {
            Constant k = CONSTANTS.get(i);
            JsonNode x = n.get(k.key);
            if (x == null && k.fallback != null) {
                v[i] = v[indexOf(k.fallback)];
                continue;
            }
            if (x == null || !x.isNumber()) {
                throw new IllegalArgumentException(file + ": '" + k.key + "' missing or not a number (a profile needs "
                        + CONSTANTS.stream().map(Constant::key).toList() + ")");
            }
            v[i] = x.asDouble() * k.unit;
        }
        String name = n.path("name").asText(file.getFileName().toString());
        return of(name, n.path("source").asText("file " + file), v, Schedule.parse(n.path("schedule").asText("flexgen"), file));
    }

    /** Writes this profile in the form {@link #load} reads (JSON, or YAML for a .yaml / .yml name). */
    public void save(Path file) throws IOException {
        ObjectMapper m = mapper(file);
        ObjectNode n = m.createObjectNode();
        n.put("name", name);
        n.put("source", source);
        n.put("schedule", schedule.name().toLowerCase(Locale.ROOT));
        for (Constant k : CONSTANTS) n.put(k.key, k.get.applyAsDouble(this) / k.unit);
        Files.writeString(file, m.writerWithDefaultPrettyPrinter().writeValueAsString(n) + "\n");
    }

    /** The same constants with other memory capacities (the command line's --gpu-mem, --cpu-mem, --disk-mem). */
    public HardwareProfile withMemory(long gpu, long cpu, long disk) {
        return new HardwareProfile(name, source, gpu, cpu, disk, cpuToGpu, gpuToCpuCache, gpuToCpuHidden, diskToCpu,
                cpuToDiskCachePrefill, cpuToDiskHiddenPrefill, cpuToDiskDecode, gpuMatmulPrefill, gpuMatmulDecode,
                gpuBmmPrefill, gpuBmmDecode, gpuMemoryBandwidth, cpuAttention, cpuC1, cpuC2, cpuC3, hostAttentionBf16, hostAttentionGq4, schedule);
    }

    /** The same constants under another schedule. */
    public HardwareProfile withSchedule(Schedule s) {
        return new HardwareProfile(name, source, gpuMemory, cpuMemory, diskMemory, cpuToGpu, gpuToCpuCache, gpuToCpuHidden, diskToCpu,
                cpuToDiskCachePrefill, cpuToDiskHiddenPrefill, cpuToDiskDecode, gpuMatmulPrefill, gpuMatmulDecode,
                gpuBmmPrefill, gpuBmmDecode, gpuMemoryBandwidth, cpuAttention, cpuC1, cpuC2, cpuC3, hostAttentionBf16, hostAttentionGq4, s);
    }

    /** The constants as a table, for reports. */
    public String describe() {
        StringBuilder b = new StringBuilder(name).append(" (").append(source).append(")\n");
        b.append(String.format(Locale.ROOT, "  %-34s %s%n", "schedule", schedule.name().toLowerCase(Locale.ROOT)));
        for (Constant k : CONSTANTS) {
            b.append(String.format(Locale.ROOT, "  %-34s %.4g%n", k.key, k.get.applyAsDouble(this) / k.unit));
        }
        return b.toString();
    }
}
