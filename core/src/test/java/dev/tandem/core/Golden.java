package dev.tandem.core;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/** The HF transformers float32 references in ../shared/models/gutenberg-stories/golden.json. */
public final class Golden {
    private Golden() {}

    public record Prompt(String text, int[] ids, int[] targetIds, String targetText, int[] draftIds, List<Top5> targetTop5) {}

    /** Top-5 logits after position {@code pos} (whose token is {@code token}). */
    public record Top5(int pos, int token, int[] ids, double[] logits) {}

    public static List<Prompt> prompts() {
        try {
            ObjectMapper m = new ObjectMapper();
            JsonNode root = m.readTree(TestModels.model("gutenberg-stories").resolve("golden.json").toFile());
            List<Prompt> out = new ArrayList<>();
            for (JsonNode p : root.path("prompts")) {
                List<Top5> top = new ArrayList<>();
                for (JsonNode t : p.path("target").path("top5_logits")) {
                    top.add(new Top5(t.path("pos").asInt(), t.path("token").asInt(), m.convertValue(t.path("top5_ids"), int[].class),
                            m.convertValue(t.path("top5_logits"), double[].class)));
                }
                out.add(new Prompt(p.path("prompt").asText(), m.convertValue(p.path("prompt_ids"), int[].class),
                        m.convertValue(p.path("target").path("generated_ids"), int[].class), p.path("target").path("generated_text").asText(),
                        m.convertValue(p.path("draft").path("generated_ids"), int[].class), top));
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** stories260K's greedy ids from llama2.c's run.c (BOS, then 64 generated), from its README. */
    public static final int[] STORIES260K_GREEDY = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13, 438, 310};

    public static final int[] LLAMA2XS_GREEDY = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 269, 280, 314, 411, 267, 337, 335, 311, 374, 419, 426, 385, 328, 432, 358, 263, 377, 267, 265, 282, 295, 433, 267, 337, 335, 311, 267, 422, 419, 426, 338, 286, 399, 393, 426, 346, 391, 266, 267};
}
