package dev.tandem.server.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.offload.exec.DiskStore;
import dev.tandem.offload.exec.LlamaProgram;
import dev.tandem.offload.exec.OffloadedGenerator;
import dev.tandem.offload.policy.OffloadPolicy;

import java.io.BufferedWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * `tandem generate-batch`: a batch job (score a corpus, label documents) on FlexGen's block schedule, for throughput
 * rather than latency, with the model's weights and KV cache placed across GPU, CPU memory and disk by a policy.
 * Input lines {"prompt", "max_tokens", "temperature"}; output lines, in the same order, {"prompt", "text", "tokens"}.
 */
final class GenerateBatchCommand {
    static final Map<String, String> VALUED = OffloadOptions.withOffloadOptions(
            "model", "model folder (Hugging Face) or .gguf / llama2.c file",
            "input", "JSONL file: one {\"prompt\": ..., \"max_tokens\": N, \"temperature\": T} per line",
            "output", "JSONL file to write, one line per input line in the same order",
            "max-tokens", "default max_tokens for lines without one (default 32)",
            "seed", "base sampling seed (line i uses seed + i; default 0)");
    static final Map<String, String> FLAGS = Args.options("ignore-eos", "generate max_tokens even past the end-of-sequence token",
            "help", "show options");

    record Line(String prompt, int[] ids, int maxTokens, float temperature) {}

    int run(String[] argv) throws Exception {
        Args args = new Args("generate-batch", argv, VALUED, FLAGS);
        if (args.flag("help")) {
            return Help.print("generate-batch --model PATH --input IN.jsonl --output OUT.jsonl --offload POLICY [--gpu-mem 16GiB] [--cpu-mem 200GiB]"
                    + " [--device cuda | --pipeline-devices cuda:0,cuda:1]", VALUED, FLAGS);
        }
        Path input = Path.of(args.required("input")), output = Path.of(args.required("output"));
        int defaultMax = args.integer("max-tokens", 32);
        long seed = args.longValue("seed", 0);
        try (Model model = ModelLoader.load(Path.of(args.required("model")), null)) {
            List<Line> lines = read(input, model, defaultMax);
            OffloadOptions.Stages stages = OffloadOptions.stages(args);
            Backend backend = stages.first();
            int promptLen = lines.stream().mapToInt(l -> l.ids().length).max().orElse(1);
            int genLen = lines.stream().mapToInt(Line::maxTokens).max().orElse(1);
            OffloadPolicy policy;
            try {
                policy = OffloadOptions.autoOnCpu(args, backend)
                        ? OffloadOptions.hostOnlyPolicy(args, model.config(), promptLen, genLen, lines.size())
                        : OffloadOptions.policy(args, backend, args.required("model"), promptLen, genLen, lines.size());
            } catch (RuntimeException e) {
                stages.close();
                throw e;
            }
            try (stages;
                 DiskStore disk = OffloadOptions.disk(args, policy);
                 OffloadedGenerator g = new OffloadedGenerator(dev.tandem.offload.exec.OptProgram.of(model.config(), model.weights(), !stages.hostOnly()),
                         stages.devices(), null, policy, disk, args.integer("chunk-rows", 4096), args.flag("ignore-eos") ? -1 : model.tokenizer().eos())) {
                List<OffloadedGenerator.Request> reqs = new ArrayList<>();
                for (int i = 0; i < lines.size(); i++) {
                    Line l = lines.get(i);
                    SamplingParams sp = new SamplingParams(l.temperature(), 0, 1f, 0f, 1f, 64, 0f, 0f, seed + i);
                    reqs.add(new OffloadedGenerator.Request(l.ids(), l.maxTokens(), sp));
                }
                BatchProgress bar = new BatchProgress("generate-batch", lines.size());
                List<int[]> out = g.generate(reqs, bar::update);
                bar.done();
                ObjectMapper m = new ObjectMapper();
                try (BufferedWriter w = Files.newBufferedWriter(output, StandardCharsets.UTF_8)) {
                    for (int i = 0; i < lines.size(); i++) {
                        ObjectNode o = m.createObjectNode();
                        o.put("prompt", lines.get(i).prompt());
                        o.put("text", model.tokenizer().decode(out.get(i)));
                        o.put("tokens", out.get(i).length);
                        w.write(m.writeValueAsString(o));
                        w.newLine();
                    }
                }
                report(g.lastStats(), policy, stages.describe());
            }
        }
        return 0;
    }

    static void report(OffloadedGenerator.Stats s, OffloadPolicy policy, String devices) {
        long[] t = s.weightBytesByTier();
        System.err.printf("generate-batch: %d sequences, %d prompt tokens, %d generated tokens on %s%n", s.sequences(), s.promptTokens(),
                s.generatedTokens(), devices);
        System.err.printf("  policy %s; weights on device %s, host %s, disk %s; host peak %s; device %s%n", policy.format(),
                OffloadOptions.gib(t[0]), OffloadOptions.gib(t[1]), OffloadOptions.gib(t[2]), OffloadOptions.gib(s.hostPeakBytes()),
                OffloadOptions.gib(s.deviceBytes()));
        System.err.printf("  prefill %.2f s, decode %.2f s, throughput %.2f tokens/s (generated tokens / total time)%n",
                s.prefillSeconds(), s.decodeSeconds(), s.tokensPerSecond());
        System.err.printf("  host thread waited %.2f s for weights (%s read from disk), %.2f s for the device; CPU attention %.2f s%n",
                s.weightWaitSeconds(), OffloadOptions.gib(s.diskBytesRead()), s.deviceWaitSeconds(), s.hostAttentionSeconds());
        OffloadOptions.reportStages(s);
    }

    private static List<Line> read(Path input, Model model, int defaultMax) throws java.io.IOException {
        ObjectMapper m = new ObjectMapper();
        List<Line> lines = new ArrayList<>();
        int n = 0;
        for (String raw : Files.readAllLines(input, StandardCharsets.UTF_8)) {
            n++;
            if (raw.isBlank()) continue;
            JsonNode o;
            try {
                o = m.readTree(raw);
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new Args.UsageException("generate-batch: " + input + " line " + n + ": not JSON (" + e.getOriginalMessage() + ")");
            }
            if (!o.isObject() || !o.path("prompt").isTextual()) {
                throw new Args.UsageException("generate-batch: " + input + " line " + n + ": expected an object with a string \"prompt\"");
            }
            JsonNode mt = o.path("max_tokens"), temp = o.path("temperature");
            if (!mt.isMissingNode() && (!mt.canConvertToInt() || mt.asInt() < 1)) {
                throw new Args.UsageException("generate-batch: " + input + " line " + n + ": \"max_tokens\" must be a positive integer, got " + mt);
            }
            if (!temp.isMissingNode() && (!temp.isNumber() || temp.asDouble() < 0)) {
                throw new Args.UsageException("generate-batch: " + input + " line " + n + ": \"temperature\" must be a number >= 0, got " + temp);
            }
            String prompt = o.path("prompt").asText();
            int[] ids = model.tokenizer().encode(prompt, true);
            if (ids.length == 0) throw new Args.UsageException("generate-batch: " + input + " line " + n + ": the prompt encodes to no tokens");
            lines.add(new Line(prompt, ids, mt.isMissingNode() ? defaultMax : mt.asInt(), temp.isMissingNode() ? 0f : (float) temp.asDouble()));
        }
        if (lines.isEmpty()) throw new Args.UsageException("generate-batch: " + input + " has no prompts");
        return lines;
    }
}
