package dev.tandem.server.cli;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.offload.exec.DiskStore;
import dev.tandem.offload.exec.LayerProgram;
import dev.tandem.offload.exec.LlamaProgram;
import dev.tandem.offload.exec.OffloadedGenerator;
import dev.tandem.offload.exec.SyntheticWeights;
import dev.tandem.offload.policy.OffloadPolicy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * `tandem bench offload`: FlexGen's benchmark — one block of sequences, every prompt exactly --prompt-len tokens, every
 * sequence --gen-len tokens — under a placement policy and memory caps, on real or synthetic ("dummy") weights. Prints
 * FlexGen's figures: prefill time, decode time, and throughput as generated tokens over the whole run.
 */
final class OffloadBenchCommand {
    static final Map<String, String> VALUED = OffloadOptions.withOffloadOptions(
            "model", "model folder with weights, or a shape with synthetic weights: llama3-8b, llama3-70b, or a config.json",
            "prompt-len", "tokens per prompt (default 512)",
            "gen-len", "tokens generated per sequence (default 32)",
            "blocks", "blocks of sequences to run (default 1; with --pipeline-devices, rounds of one block per stage)");
    static final Map<String, String> FLAGS = Args.options("help", "show options");

    int run(String[] argv) throws Exception {
        Args args = new Args("bench offload", argv, VALUED, FLAGS);
        if (args.flag("help")) {
            return Help.print("bench offload --model PATH|SHAPE --offload POLICY [--prompt-len 512] [--gen-len 32] [--gpu-mem 16GiB] [--device cuda"
                            + " | --pipeline-devices cuda:0,cuda:1]",
                    VALUED, FLAGS);
        }
        String name = args.required("model");
        int promptLen = args.integer("prompt-len", 512), genLen = args.integer("gen-len", 32), blocks = args.integer("blocks", 1);
        if (promptLen < 1 || genLen < 1 || blocks < 1) throw args.usage("--prompt-len, --gen-len and --blocks must be positive");
        Path path = Path.of(name);
        boolean loaded = Files.isDirectory(path) || (Files.isRegularFile(path) && !name.endsWith(".json"));
        Model model = loaded ? ModelLoader.load(path, null) : null;
        OffloadOptions.Stages stages = OffloadOptions.stages(args);
        Backend backend = stages.first();
        OffloadPolicy policy;
        try {
            policy = OffloadOptions.autoOnCpu(args, backend)
                    ? OffloadOptions.hostOnlyPolicy(args, model != null ? model.config() : InitRandomCommand.preset(args, name), promptLen, genLen, 64)
                    : OffloadOptions.policy(args, backend, name, promptLen, genLen, 0);
        } catch (RuntimeException e) {
            stages.close();
            throw e;
        }
        try (stages;
             DiskStore disk = OffloadOptions.disk(args, policy)) {
            boolean stacked = !stages.hostOnly();
            ModelConfig config;
            LayerProgram program;
            long t0 = System.nanoTime();
            if (model != null) {
                config = model.config();
                program = dev.tandem.offload.exec.OptProgram.of(config, model.weights(), stacked);
            } else {
                config = InitRandomCommand.preset(args, name);
                program = dev.tandem.offload.exec.OptProgram.synthetic(new SyntheticWeights(config, 1), stacked);
                // Random weights have no accuracy to protect: compress them by min / max, as FlexGen does, not by
                // the least-squares search (hours of CPU at 30B shapes).
                for (var d : stages.devices()) d.weightRange(dev.tandem.core.quant.GroupQuant4.Range.MIN_MAX);
            }
            try (OffloadedGenerator g = new OffloadedGenerator(program, stages.devices(), null, policy, disk, args.integer("chunk-rows", 4096), -1)) {
                System.err.printf("bench offload: %s on %s; weights placed in %.1f s%n", config.describe(), stages.describe(),
                        (System.nanoTime() - t0) / 1e9);
                SplittableRandom rnd = new SplittableRandom(7);
                List<OffloadedGenerator.Request> reqs = new ArrayList<>();
                // A pipeline keeps as many blocks in flight as it has stages: --blocks counts rounds of them.
                for (int i = 0; i < policy.blockSize() * blocks * stages.devices().size(); i++) {
                    int[] ids = new int[promptLen];
                    for (int j = 0; j < promptLen; j++) ids[j] = 3 + rnd.nextInt(config.vocabSize() - 3);
                    reqs.add(new OffloadedGenerator.Request(ids, genLen, SamplingParams.GREEDY));
                }
                BatchProgress bar = new BatchProgress("bench offload", reqs.size());
                g.generate(reqs, bar::update);
                bar.done();
                OffloadedGenerator.Stats s = g.lastStats();
                GenerateBatchCommand.report(s, policy, stages.describe());
                System.out.printf("| model | policy | devices | prompt | gen | sequences | prefill s | decode s | tokens/s |%n"
                        + "|---|---|---|---|---|---|---|---|---|%n");
                System.out.printf("| %s | %s | %s | %d | %d | %d | %.2f | %.2f | %.2f |%n", path.getFileName(), policy.format(),
                        stages.devices().size() > 1 ? args.string("pipeline-devices", "") : args.string("device", "cpu"), promptLen, genLen,
                        s.sequences(), s.prefillSeconds(), s.decodeSeconds(), s.tokensPerSecond());
            }
        } finally {
            if (model != null) model.close();
        }
        return 0;
    }
}
