package dev.tandem.server.cli;

import dev.tandem.offload.policy.CostModel;
import dev.tandem.offload.policy.Estimate;
import dev.tandem.offload.policy.HardwareProfile;
import dev.tandem.offload.policy.ModelShape;
import dev.tandem.offload.policy.OffloadPolicy;
import dev.tandem.offload.policy.PolicySearch;

import java.util.Locale;
import java.util.Map;

/**
 * `tandem plan-offload`: FlexGen's policy search for a model that does not fit in GPU memory: the placement of weights,
 * KV cache and activations over GPU, CPU and disk, the batching, and the predicted throughput and bottleneck. With
 * --policy it evaluates a given policy instead (FlexGen's published ones, say).
 */
final class PlanOffloadCommand {
    static final Map<String, String> VALUED = Args.options(
            "model", "model directory (config.json of an OPT or Llama-family model) or a known shape: "
                    + String.join(", ", ModelShape.knownNames()),
            "hardware", "t4-flexgen (FlexGen's fitted T4 constants), h200 (default), or a profile file from `tandem calibrate`",
            "gpu-mem", "GPU memory to plan for (default: the profile's), e.g. 16GiB",
            "cpu-mem", "CPU memory to plan for (default: the profile's), e.g. 200GiB",
            "disk-mem", "disk space to plan for (default: the profile's), e.g. 1.5TB (sizes are powers of 1024)",
            "prompt-len", "prompt tokens per sequence (default 512)",
            "gen-len", "generated tokens per sequence (default 32)",
            "attention", "where attention over an offloaded KV cache may run: cpu, gpu or auto (default auto)",
            "headroom", "fraction of each tier the peaks may use (default 0.8, FlexGen's)",
            "gpu-batch-size", "fix the GPU batch size",
            "num-gpu-batches", "fix the number of GPU batches per block",
            "sequences", "sequences in the job: caps the block (default: no cap)",
            "policy", "evaluate this policy instead of searching: \"GBS NUM_GB W_GPU W_CPU C_GPU C_CPU A_GPU A_CPU [flags]\"");
    static final Map<String, String> FLAGS = Args.options(
            "compress", "also consider 4-bit weights and KV cache (group 64)",
            "help", "show options");

    int run(String[] argv) {
        Args args = new Args("plan-offload", argv, VALUED, FLAGS);
        if (args.flag("help")) {
            return Help.print("plan-offload --model PATH|NAME [--gpu-mem 16GiB] [--cpu-mem 200GiB] [--disk-mem 1.5TB] "
                    + "[--prompt-len 512] [--gen-len 32] [--compress] [--hardware NAME|FILE]", VALUED, FLAGS);
        }
        ModelShape model = ModelShape.resolve(args.required("model"));
        HardwareProfile hw = HardwareProfile.resolve(args.string("hardware", "h200"));
        hw = hw.withMemory(args.bytes("gpu-mem", hw.gpuMemory()), args.bytes("cpu-mem", hw.cpuMemory()), args.bytes("disk-mem", hw.diskMemory()));
        CostModel cost = new CostModel(model, hw, args.integer("prompt-len", 512), args.integer("gen-len", 32));
        double headroom = args.number("headroom", 0.8f);

        System.out.println("model:    " + model.describe());
        System.out.printf(Locale.ROOT, "hardware: %s (%s)%n", hw.name(), hw.source());
        System.out.printf(Locale.ROOT, "memory:   GPU %s, CPU %s, disk %s; peaks planned within %.0f%%%n",
                gib(hw.gpuMemory()), gib(hw.cpuMemory()), gib(hw.diskMemory()), 100 * headroom);
        System.out.printf(Locale.ROOT, "workload: prompt %d, generation %d tokens per sequence%n%n", cost.promptLen(), cost.genLen());

        Estimate e;
        if (args.has("policy")) {
            e = cost.estimate(OffloadPolicy.parse(args.required("policy")));
            if (!e.fits(headroom)) {
                System.out.printf(Locale.ROOT, "note: this policy's peaks exceed %.0f%% of a tier (the search would not pick it)%n", 100 * headroom);
            }
        } else {
            PolicySearch.Options options = new PolicySearch.Options(args.flag("compress"), headroom,
                    args.integer("gpu-batch-size", 0), args.integer("num-gpu-batches", 0),
                    PolicySearch.Attention.parse(args.string("attention", "auto")), args.integer("sequences", 0));
            PolicySearch.Result r = new PolicySearch(cost, options).search();
            e = r.best();
            System.out.println(r.summary());
        }
        System.out.println("policy: " + e.policy().format() + "\n");
        System.out.print(e.table());
        return 0;
    }

    private static String gib(long bytes) {
        return String.format(Locale.ROOT, "%.1f GiB", bytes / HardwareProfile.GIB);
    }
}
