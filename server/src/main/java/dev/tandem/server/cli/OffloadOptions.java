package dev.tandem.server.cli;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.offload.calibrate.Calibration;
import dev.tandem.offload.exec.CpuOffloadDevice;
import dev.tandem.offload.exec.CudaOffloadDevice;
import dev.tandem.offload.exec.DiskStore;
import dev.tandem.offload.exec.OffloadDevice;
import dev.tandem.offload.policy.OffloadPolicy;

import java.nio.file.Path;

/** The memory caps, disk tier and policy shared by `generate-batch` and `bench offload`. */
final class OffloadOptions {
    private OffloadOptions() {}

    static final String[] OPTIONS = {
            "offload", "placement policy in FlexGen's notation 'GBS NUM_GB W_GPU W_CPU C_GPU C_CPU A_GPU A_CPU [compress-weight] "
                    + "[compress-cache] [cpu-cache-compute]' (percent on GPU and CPU; the rest of the weights on disk)",
            "gpu-mem", "GPU memory the run may use, e.g. 16GiB (default: all of it)",
            "cpu-mem", "host memory for weights, KV cache and staging, e.g. 200GiB (default: 80% of physical memory)",
            "disk-mem", "disk tier size, e.g. 1.5TB (default 1TB)",
            "disk-dir", "folder for the disk tier's scratch file (default: the system temp folder)",
            "chunk-rows", "most prompt tokens one prefill op covers (default 4096)"};

    static OffloadPolicy policy(Args args) {
        String p = args.required("offload");
        try {
            return OffloadPolicy.parse(p);
        } catch (IllegalArgumentException e) {
            throw args.usage("--offload: " + e.getMessage());
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
