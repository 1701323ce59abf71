package dev.tandem.server.cli;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.cuda.CudaDriver;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.offload.calibrate.Calibration;
import dev.tandem.offload.policy.HardwareProfile;
import dev.tandem.offload.policy.ModelShape;

import dev.tandem.core.format.hf.HfConfig;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.offload.exec.LayerProgram;
import dev.tandem.offload.exec.OptProgram;
import dev.tandem.offload.exec.SyntheticWeights;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * `tandem calibrate`: measures the offloading cost model's constants on this machine (disk and CPU always, the GPU
 * with --device cuda[:N]) and writes a hardware profile that `plan-offload --hardware FILE` reads.
 */
final class CalibrateCommand {
    static final Map<String, String> VALUED = Args.options(
            "out", "profile file to write (JSON, or YAML for .yaml / .yml)",
            "device", "cpu (default: disk and CPU only) or cuda[:N] (also copies, matmuls and attention on GPU N)",
            "disk-dir", "directory the disk probe writes to, on the disk that will hold offloaded tensors (default: the system temp dir)",
            "disk-bytes", "bytes the disk probe writes and reads (default 2G; more than the disk's cache for a true figure)",
            "model", "shape whose heads and matrices the compute probes use (default opt-30b)",
            "base", "profile the unmeasured constants come from (default h200)",
            "name", "profile name (default calibrated)",
            "threads", "CPU backend threads (default: all cores)",
            "cpu-seqs", "sequences in the CPU attention probe (default 8; its f32 cache is seqs x 512 x kv width x 8 bytes)",
            "gpu-batch", "GPU batch of the decode probes (default 48, FlexGen's OPT-30B batch)",
            "prompt-len", "prompt length of the prefill probes and the decode context (default 512)",
            "gen-len", "generated tokens: the host-attention probe attends at prompt + gen/2 in caches of prompt + gen slots (default 32)",
            "host-cache", "bytes of the host-attention probe's KV cache, per format (default 2G: more than the CPU caches, as in a run)",
            "chunk-rows", "rows of a prefill segment for the GPU layer probe, as bench offload / generate-batch --chunk-rows (default 2048)",
            "seconds", "time budget of each compute figure (default 2)");
    static final Map<String, String> FLAGS = Args.options("help", "show options");

    /** The --model's layers with synthetic weights (the layer probe times ops, not values), stacked as on the CUDA path. */
    private static LayerProgram program(Args args) {
        String name = args.string("model", "opt-30b");
        Path p = Path.of(name);
        ModelConfig config = Files.isDirectory(p) ? HfConfig.read(p.resolve("config.json"))
                : Files.isRegularFile(p) ? HfConfig.read(p) : InitRandomCommand.preset(args, name);
        return OptProgram.synthetic(new SyntheticWeights(config, 1), true);
    }

    int run(String[] argv) throws Exception {
        Args args = new Args("calibrate", argv, VALUED, FLAGS);
        if (args.flag("help")) {
            return Help.print("calibrate [--device cuda[:N]] [--disk-dir DIR] --out FILE", VALUED, FLAGS);
        }
        Path out = Path.of(args.required("out"));
        String device = args.string("device", "cpu");
        int ordinal = BackendOptions.cudaOrdinal(args, device);
        if (ordinal < 0 && !device.equals("cpu")) throw args.usage("--device must be cpu or cuda[:N], got '" + device + "'");
        Calibration.Settings settings = new Calibration.Settings(ModelShape.resolve(args.string("model", "opt-30b")),
                Path.of(args.string("disk-dir", System.getProperty("java.io.tmpdir"))), args.bytes("disk-bytes", 2L << 30),
                args.integer("cpu-seqs", 8), args.integer("gpu-batch", 48), args.integer("prompt-len", 512), args.integer("gen-len", 32),
                args.bytes("host-cache", 2L << 30), args.integer("chunk-rows", 2048), args.number("seconds", 2));
        HardwareProfile base = HardwareProfile.resolve(args.string("base", "h200"));
        int threads = args.integer("threads", Runtime.getRuntime().availableProcessors());
        Backend gpu = null;
        if (ordinal >= 0) {
            String why = CudaDriver.unavailableReason();
            if (why != null) System.out.println("no GPU: " + why);
            else gpu = new CudaBackend(ordinal, CudaBackend.Precision.BF16, false);
        }
        try (CpuBackend cpu = new CpuBackend(threads)) {
            HardwareProfile p = new Calibration(settings, System.out::println)
                    .run(args.string("name", "calibrated"), base, cpu, gpu, Math.max(ordinal, 0), gpu == null ? null : program(args));
            p.save(out);
            System.out.print("\n" + p.describe());
            System.out.println("wrote " + out + "; use it with: tandem plan-offload --hardware " + out + " --model ...");
        } finally {
            if (gpu != null) gpu.close();
        }
        return 0;
    }
}
