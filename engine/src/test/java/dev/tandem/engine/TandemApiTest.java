package dev.tandem.engine;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The embedding API as the README shows it. */
class TandemApiTest {
    static final Path MODEL = Path.of(System.getProperty("tandem.shared", "../../shared"), "models", "gutenberg-stories-llama-25m");

    @Test
    void blockingAndStreamingGenerationAgree() {
        try (Tandem tandem = Tandem.open(MODEL)) {
            Tandem.Result r = tandem.generate("Once upon a time", Tandem.Options.greedy(16));
            assertTrue(r.text().startsWith(" there lived in a little village in a little village"), r.text());
            assertEquals(FinishReason.LENGTH, r.finishReason());
            assertEquals(5, r.promptTokens());
            List<String> pieces = new ArrayList<>();
            Tandem.Result s = tandem.stream("Once upon a time", Tandem.Options.greedy(16), pieces::add);
            assertEquals(r.text(), String.join("", pieces));
            assertEquals(r.text(), s.text());
            Tandem.Result a = tandem.generate("The little dog", Tandem.Options.sampled(24, 0.9f, 5));
            Tandem.Result b = tandem.generate("The little dog", Tandem.Options.sampled(24, 0.9f, 5));
            assertEquals(a.text(), b.text(), "a seed reproduces a sampled generation");
        }
    }
}
