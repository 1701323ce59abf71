package dev.tandem.server.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CLI as a user runs it: stdout carries only the continuation, errors are one line and a non-zero exit. */
class CliTest {
    static final Path SHARED = Path.of(System.getProperty("tandem.shared", "../../shared"));

    record Result(int code, String out, String err) {}

    static synchronized Result run(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int code = Main.run(args);
            return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    @Test
    void generatePrintsOnlyTheGreedyContinuationOfLlama2c() {
        Result r = run("generate", "--model", SHARED.resolve("models/stories260K/stories260K.bin").toString(),
                "--prompt", "Once upon a time", "--temperature", "0", "--max-tokens", "60");
        assertEquals(0, r.code(), r.err());
        assertEquals(", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. "
                + "She wanted to play with it, but it was too high.\nLily", r.out());
        assertTrue(r.err().contains("prompt: 5 tokens"), r.err());
        assertTrue(r.err().contains("generated: 60 tokens"), r.err());
    }

    @Test
    void aFixedSeedReproducesASampledOutput() {
        String model = SHARED.resolve("models/gutenberg-stories-llama-3m").toString();
        Result a = run("generate", "--model", model, "--prompt", "The little dog", "--seed", "7", "--max-tokens", "24", "--temperature", "1");
        Result b = run("generate", "--model", model, "--prompt", "The little dog", "--seed", "7", "--max-tokens", "24", "--temperature", "1");
        Result c = run("generate", "--model", model, "--prompt", "The little dog", "--seed", "8", "--max-tokens", "24", "--temperature", "1");
        assertEquals(0, a.code(), a.err());
        assertEquals(a.out(), b.out());
        assertTrue(!a.out().equals(c.out()), "different seeds should give different text");
    }

    @Test
    void speculativeGeneratePrintsThePlainGreedyTextAndASpeculationSummary() {
        String target = SHARED.resolve("models/stories260K/stories260K.bin").toString();
        Result plain = run("generate", "--model", target, "--prompt", "Once upon a time", "--temperature", "0", "--max-tokens", "60");
        Result spec = run("generate", "--model", target, "--draft-model", SHARED.resolve("models/llama2xs-279K/llama2xs-279K.bin").toString(),
                "--num-speculative-tokens", "3", "--prompt", "Once upon a time", "--temperature", "0", "--max-tokens", "60");
        assertEquals(0, spec.code(), spec.err());
        assertEquals(plain.out(), spec.out());
        assertTrue(spec.err().contains("generated: 60 tokens"), spec.err());
        assertTrue(spec.err().contains("mean accepted length") && spec.err().contains("acceptance by position"), spec.err());
    }

    @Test
    void speculationOptionsWithoutADrafterOrWithAForeignVocabularyAreUsageErrors() {
        String target = SHARED.resolve("models/gutenberg-stories-llama-25m").toString();
        Result noDrafter = run("generate", "--model", target, "--num-speculative-tokens", "3", "--prompt", "hi");
        assertEquals(2, noDrafter.code());
        assertTrue(noDrafter.err().contains("need --draft-model PATH or --draft ngram"), noDrafter.err());
        Result foreign = run("generate", "--model", target, "--draft-model", SHARED.resolve("models/stories260K/stories260K.bin").toString(), "--prompt", "hi");
        assertEquals(2, foreign.code());
        assertTrue(foreign.err().contains("vocabulary of 512 tokens") && foreign.err().contains("8192"), foreign.err());
    }

    @Test
    void tokenizePrintsTheIds() {
        Result r = run("tokenize", "--model", SHARED.resolve("models/gutenberg-stories-llama-25m").toString(), "Once upon a time");
        assertEquals(0, r.code(), r.err());
        assertEquals("[0, 6583, 606, 260, 579]", r.out().trim());
    }

    @Test
    void badModelIsOneLineAndNonZeroExit() {
        Result r = run("generate", "--model", SHARED.resolve("models/README.md").toString(), "--prompt", "x");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("tandem: ") && r.err().contains("README.md") && r.err().contains("not a recognised model"), r.err());
        assertEquals("", r.out());
    }

    @Test
    void badOptionsAreUsageErrors() {
        Result r = run("generate", "--model", "x", "--max-tokens", "many");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--max-tokens expects an integer, got 'many'"), r.err());
        Result u = run("generate", "--modle", "x");
        assertEquals(2, u.code());
        assertTrue(u.err().contains("unknown option --modle"), u.err());
    }
}
