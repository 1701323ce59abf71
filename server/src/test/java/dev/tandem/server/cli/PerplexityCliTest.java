package dev.tandem.server.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `tandem perplexity` on the start of the gutenberg-stories validation text, with and without 4-bit compression. */
class PerplexityCliTest {
    private static final Pattern FIGURE = Pattern.compile("predicted (\\d+) tokens: mean NLL ([0-9.]+) nats, perplexity ([0-9.]+)");

    @Test
    void compressionRaisesThePrintedPerplexity(@TempDir Path dir) throws IOException {
        Path text = dir.resolve("val-start.txt");
        Files.write(text, Files.readAllLines(CliTest.SHARED.resolve("models/gutenberg-stories/val.txt")).subList(0, 30));
        String model = CliTest.SHARED.resolve("models/gutenberg-stories-llama-3m").toString();
        double plain = perplexity(model, text.toString());
        double compressed = perplexity(model, text.toString(), "--compress-weights", "--compress-kv");
        assertTrue(plain > 5 && plain < 200, "perplexity " + plain);
        assertTrue(compressed > plain && compressed < plain * 1.25, plain + " -> " + compressed);
    }

    @Test
    void badInputIsNamed() {
        String model = CliTest.SHARED.resolve("models/gutenberg-stories-llama-3m").toString();
        CliTest.Result r = CliTest.run("perplexity", "--model", model, "--text", "/no/such/file.txt");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("/no/such/file.txt: no such file"), r.err());
        String text = CliTest.SHARED.resolve("models/gutenberg-stories/val.txt").toString();
        r = CliTest.run("perplexity", "--model", model, "--text", text, "--device", "reference", "--compress-kv", "--max-tokens", "8");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("reference backend keeps its KV cache in f32"), r.err());
        r = CliTest.run("perplexity", "--model", model, "--text", text, "--compress-weights", "--weight-range", "minmax");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--weight-range must be least-squares or min-max, got minmax"), r.err());
    }

    private static double perplexity(String model, String text, String... flags) {
        String[] args = {"perplexity", "--model", model, "--text", text, "--context", "128", "--max-tokens", "256"};
        String[] all = java.util.Arrays.copyOf(args, args.length + flags.length);
        System.arraycopy(flags, 0, all, args.length, flags.length);
        CliTest.Result r = CliTest.run(all);
        assertEquals(0, r.code(), r.err());
        Matcher m = FIGURE.matcher(r.out());
        assertTrue(m.find(), r.out());
        assertEquals(256, Integer.parseInt(m.group(1)));
        return Double.parseDouble(m.group(3));
    }
}
