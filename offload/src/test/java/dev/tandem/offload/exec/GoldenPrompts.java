package dev.tandem.offload.exec;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The golden prompts of the gutenberg-stories models and the 25m model's greedy continuations from Hugging Face. */
record GoldenPrompts(List<int[]> prompts, List<int[]> generated) {
    static final Path SHARED = Path.of(System.getProperty("tandem.shared", "../../shared"));

    static GoldenPrompts load() throws IOException {
        JsonNode root = new ObjectMapper().readTree(SHARED.resolve("models/gutenberg-stories/golden.json").toFile());
        ObjectMapper m = new ObjectMapper();
        List<int[]> prompts = new ArrayList<>(), generated = new ArrayList<>();
        for (JsonNode p : root.path("prompts")) {
            prompts.add(m.convertValue(p.path("prompt_ids"), int[].class));
            generated.add(m.convertValue(p.path("target").path("generated_ids"), int[].class));
        }
        return new GoldenPrompts(prompts, generated);
    }

    /** Greedy requests for every prompt, {@code copies} times over, {@code tokens} tokens each. */
    List<OffloadedGenerator.Request> requests(int copies, int tokens) {
        List<OffloadedGenerator.Request> out = new ArrayList<>();
        for (int c = 0; c < copies; c++) {
            for (int[] ids : prompts) out.add(new OffloadedGenerator.Request(ids, tokens, dev.tandem.core.sampling.SamplingParams.GREEDY));
        }
        return out;
    }
}
