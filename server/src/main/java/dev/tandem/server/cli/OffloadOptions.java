package dev.tandem.server.cli;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.offload.calibrate.Calibration;
import dev.tandem.offload.exec.CpuOffloadDevice;
import dev.tandem.offload.exec.CudaOffloadDevice;
import dev.tandem.offload.exec.DiskStore;
import dev.tandem.offload.exec.OffloadDevice;
import dev.tandem.offload.exec.OffloadedGenerator;
import dev.tandem.offload.policy.OffloadPolicy;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** The memory caps, disk tier and policy shared by `generate-batch` and `bench offload`. */
final class OffloadOptions {
    private OffloadOptions() {}

    static final String[] OPTIONS = {
            "offload", "auto (the policy search's choice for these caps and lengths), or a policy in FlexGen's notation 'GBS NUM_GB W_GPU "
                    + "W_CPU C_GPU C_CPU A_GPU A_CPU [compress-weight] [compress-cache] [cpu-cache-compute]' (percent on GPU and CPU; the rest of "
                    + "the weights on disk)",
            "hardware", "hardware profile for --offload auto: h200 (default), t4-flexgen, or a file written by `tandem calibrate`",
            "gpu-mem", "GPU memory the run may use, e.g. 16GiB (default: all of it)",
            "cpu-mem", "host memory for weights, KV cache and staging, e.g. 200GiB (default: 80% of physical memory)",
            "disk-mem", "disk tier size, e.g. 1.5TB (default 1TB)",
            "disk-dir", "folder for the disk tier's scratch file (default: the system temp folder)",
            "chunk-rows", "most prompt tokens one prefill op covers (default 4096)",
            "pipeline-devices", "pipeline parallelism: devices, one stage each (layers split evenly), e.g. cuda:0,cuda:1; replaces --device; "
                    + "--gpu-mem and --cpu-mem cap each device, as many blocks as stages are in flight"};

    /**
     * The policy: given, or searched (--offload auto) for this model, these caps and lengths; the search's estimate is
     * printed, so that a run can be compared with its prediction.
     */
    static OffloadPolicy policy(Args args, Backend backend, String model, int promptLen, int genLen, int sequences) {
        if (!args.string("offload", "").equals("auto")) return policy(args);
        if (!(backend instanceof CudaBackend cuda)) {
            throw args.usage("--offload auto plans with a GPU here; on --device cpu the caller uses hostOnlyPolicy, not " + backend.name());
        }
        long gpu = args.bytes("gpu-mem", cuda.memoryInfo()[1]);
        long cpu = args.has("cpu-mem") ? args.bytes("cpu-mem", 0) : physicalMemory() / 10 * 8;
        long disk = args.bytes("disk-mem", 1L << 40);
        dev.tandem.offload.policy.CostModel cost;
        try {
            cost = new dev.tandem.offload.policy.CostModel(dev.tandem.offload.policy.ModelShape.resolve(model),
                    dev.tandem.offload.policy.HardwareProfile.resolve(args.string("hardware", "h200")).withMemory(gpu, cpu, disk), promptLen, genLen);
        } catch (IllegalArgumentException e) {
            throw args.usage("--offload auto: " + e.getMessage());
        }
        dev.tandem.offload.policy.PolicySearch.Result r = new dev.tandem.offload.policy.PolicySearch(cost,
                dev.tandem.offload.policy.PolicySearch.Options.defaults(false).withMaxSequences(sequences)).search();
        System.err.printf("offload auto: %s (%s); predicted %.2f tokens/s, bottleneck %s%n", r.policy().format(), r.summary(),
                r.best().tokensPerSecond(), r.best().bottleneck());
        return r.policy();
    }

    /** A command's own options followed by the offload and backend ones (--offload, the caps, --device, ...). */
    static Map<String, String> withOffloadOptions(String... commandPairs) {
        String[] all = new String[commandPairs.length + OPTIONS.length + BackendOptions.OPTIONS.length];
        System.arraycopy(commandPairs, 0, all, 0, commandPairs.length);
        System.arraycopy(OPTIONS, 0, all, commandPairs.length, OPTIONS.length);
        System.arraycopy(BackendOptions.OPTIONS, 0, all, commandPairs.length + OPTIONS.length, BackendOptions.OPTIONS.length);
        return Args.options(all);
    }

    /** Whether --offload asks for a plan, and on the CPU backend (planned by {@link #hostOnlyPolicy} from the model's sizes). */
    static boolean autoOnCpu(Args args, Backend backend) {
        return args.string("offload", "").equals("auto") && backend instanceof CpuBackend;
    }

    /**
     * `--offload auto` on the CPU backend ({@link dev.tandem.offload.policy.HostOnlyPlanner}): the job's sequences in
     * one block, KV cache in RAM, as many weights as the rest of --cpu-mem holds.
     */
    static OffloadPolicy hostOnlyPolicy(Args args, dev.tandem.core.model.ModelConfig c, int promptLen, int genLen, int sequences) {
        long cpu = args.has("cpu-mem") ? args.bytes("cpu-mem", 0) : physicalMemory() / 10 * 8;
        long weights = (long) (c.matrixParameters() - (long) c.vocabSize() * c.dim() * (c.tiedEmbeddings() ? 1 : 2)) * 2;
        long kvPerSeq = 2L * c.layers() * c.kvDim() * 4 * (promptLen + genLen);
        try {
            OffloadPolicy p = dev.tandem.offload.policy.HostOnlyPlanner.plan(weights, kvPerSeq, weights / Math.max(1, c.layers()),
                    Math.max(1, sequences), cpu);
            System.err.printf("offload auto (CPU): %s: %d sequences per block, %.0f%% of the weights in RAM, the rest on disk%n", p.format(),
                    p.blockSize(), p.weightCpuPercent());
            return p;
        } catch (IllegalArgumentException e) {
            throw args.usage("--offload auto: " + e.getMessage());
        }
    }

    static OffloadPolicy policy(Args args) {
        String p = args.required("offload");
        try {
            return OffloadPolicy.parse(p);
        } catch (IllegalArgumentException e) {
            throw args.usage("--offload: " + e.getMessage());
        }
    }

    /**
     * The run's backends and offload devices: one of each per pipeline stage (--pipeline-devices), or --device's alone.
     * Closes the devices, then the backends.
     */
    record Stages(List<Backend> backends, List<OffloadDevice> devices) implements AutoCloseable {
        /** The first stage's backend: the one policies are planned with (each stage holds a share of the layers). */
        Backend first() { return backends.get(0); }

        boolean hostOnly() { return devices.get(0).hostOnly(); }

        String describe() { return backends.stream().map(Backend::name).collect(java.util.stream.Collectors.joining(" + ")); }

        @Override
        public void close() {
            devices.forEach(OffloadDevice::close);
            backends.forEach(Backend::close);
        }
    }

    static Stages stages(Args args) {
        List<String> names = List.of(args.string("device", "cpu"));
        if (args.has("pipeline-devices")) {
            if (args.has("device")) throw args.usage("--pipeline-devices replaces --device: give one or the other");
            names = java.util.Arrays.stream(args.string("pipeline-devices", "").split(",")).map(String::trim).toList();
            if (names.size() < 2 || names.stream().anyMatch(String::isEmpty)) {
                throw args.usage("--pipeline-devices needs two devices or more, separated by commas, e.g. cuda:0,cuda:1");
            }
        }
        List<Backend> backends = new ArrayList<>();
        List<OffloadDevice> devices = new ArrayList<>();
        try {
            for (int i = 0; i < names.size(); i++) {
                backends.add(BackendOptions.open(args, names.get(i), names.size(), i));
                devices.add(device(args, backends.get(i)));
            }
            if (devices.stream().map(OffloadDevice::hostOnly).distinct().count() > 1) {
                throw args.usage("--pipeline-devices: every stage runs on cuda or every stage on cpu, not a mix: " + names);
            }
            return new Stages(List.copyOf(backends), List.copyOf(devices));
        } catch (RuntimeException e) {
            new Stages(backends, devices).close();
            throw e;
        }
    }

    /** Where each pipeline stage's time went (only for pipelines: one device shows its waits in the report above). */
    static void reportStages(OffloadedGenerator.Stats s) {
        if (s.stages().size() < 2) return;
        System.err.println("  pipeline stages (busy: running passes; idle: waiting for the previous stage's hand-off):");
        for (int i = 0; i < s.stages().size(); i++) {
            OffloadedGenerator.StageStats st = s.stages().get(i);
            double total = st.busySeconds() + st.idleSeconds();
            System.err.printf("    stage %d on %s, layers %d-%d: busy %.2f s (%.0f%%), idle %.2f s; within busy: weights %.2f s, device %.2f s, "
                            + "CPU attention %.2f s%n", i, st.device(), st.firstLayer(), st.firstLayer() + st.layers() - 1, st.busySeconds(),
                    total > 0 ? 100 * st.busySeconds() / total : 0, st.idleSeconds(), st.weightWaitSeconds(), st.deviceWaitSeconds(),
                    st.hostAttentionSeconds());
        }
    }

    static OffloadDevice device(Args args, Backend backend) {
        long cpuMem = args.has("cpu-mem") ? args.bytes("cpu-mem", 0) : physicalMemory() / 10 * 8;
        if (backend instanceof CudaBackend cuda) {
            long gpuMem = args.bytes("gpu-mem", cuda.memoryInfo()[1]);
            return new CudaOffloadDevice(cuda, gpuMem, cpuMem);
        }
        if (backend instanceof CpuBackend cpu) {
            if (args.has("gpu-mem")) throw args.usage("--gpu-mem applies to --device cuda only");
            return new CpuOffloadDevice(cpu, cpuMem);
        }
        throw args.usage("offloading runs on --device cpu or cuda, not " + backend.name());
    }

    /** MemTotal of /proc/meminfo; 64 GiB where there is none. */
    static long physicalMemory() { return Calibration.physicalMemory(64L << 30); }

    /** The disk tier when the policy puts weights there, else null. */
    static DiskStore disk(Args args, OffloadPolicy policy) {
        if (policy.weightDiskPercent() <= 1e-9) return null;
        Path dir = Path.of(args.string("disk-dir", System.getProperty("java.io.tmpdir")));
        return new DiskStore(dir, args.bytes("disk-mem", 1L << 40));
    }

    static String gib(long bytes) { return String.format("%.2f GiB", bytes / (double) (1L << 30)); }
}
