package dev.tandem.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.core.tokenizer.Tokenizer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The whole command against a fake streaming endpoint on an ephemeral port. */
class ServeBenchmarkTest {
    @TempDir
    Path tmp;

    static Tokenizer tokenizer;

    @BeforeAll
    static void load() {
        tokenizer = TokenizerLoader.load(Shared.model());
    }

    private record Run(int code, String out, String err) {}

    private static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int code = ServeBenchmark.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void poissonRunAgainstAStreamingEndpointCountsTokensFailuresAndWritesEveryReport() throws IOException {
        int n = 40;
        // Arrivals 1-4 are the warm-up and the baseline; of the run's arrivals 5..44, every 10th fails with 500
        // and every 10th offset by 5 breaks off mid-stream.
        try (FakeOpenAiServer server = new FakeOpenAiServer(tokenizer, 20, 3, k -> k > 4 && k % 10 == 0, k -> k > 4 && k % 10 == 5)) {
            Path out = tmp.resolve("run");
            Run r = run("--url", server.url(), "--tokenizer", Shared.model().toString(), "--trace", Shared.conv().toString(),
                    "--rate", "25", "--max-requests", String.valueOf(n), "--scale-tokens", "0.05", "--max-context", "128",
                    "--seed", "3", "--out", out.toString(), "--median-ttft-only");
            assertEquals(0, r.code(), r.err());
            assertEquals(4 + n, server.completions.get());
            for (String f : List.of("summary.json", "report.md", "requests.csv", "timeseries.csv", "cdf-ttft.png", "cdf-tbt.png",
                    "cdf-e2e.png", "slo-ratios.png", "throughput.png", "in-flight.png")) {
                assertTrue(Files.size(out.resolve(f)) > 0, f);
            }
            assertTrue(isPng(out.resolve("cdf-ttft.png")));
            // the server's /metrics around the run: the 4 unmeasured requests before, all of them after
            assertEquals("# TYPE fake_completions_total counter\nfake_completions_total 4\n", Files.readString(out.resolve("metrics-before.txt")));
            assertEquals("# TYPE fake_completions_total counter\nfake_completions_total " + (4 + n) + "\n", Files.readString(out.resolve("metrics-after.txt")));
            assertEquals(Files.readString(out.resolve("report.md")), r.out()); // the report is also printed

            int failures500 = 4, cutOffs = 4; // 10, 20, 30, 40 and 5, 15, 25, 35
            JsonNode s = new ObjectMapper().readTree(out.resolve("summary.json").toFile());
            JsonNode counts = s.path("requests");
            assertEquals(n, counts.path("issued").asInt());
            assertEquals(failures500 + cutOffs, counts.path("failed").asInt());
            assertEquals(n - failures500 - cutOffs, counts.path("completed").asInt());
            assertEquals(0, counts.path("shortOutputs").asInt());
            assertEquals(0, counts.path("promptTokenMismatches").asInt()); // the fake counts with the same tokenizer
            assertEquals(0, counts.path("usageMissing").asInt());
            assertEquals("fake-model", s.path("config").path("model").asText());

            // Token counts: every completed request got exactly what it asked, though some chunks carried two.
            List<String[]> rows = Files.readAllLines(out.resolve("requests.csv")).stream().skip(1).map(l -> l.split(",", -1)).toList();
            assertEquals(n, rows.size());
            long expectedOut = 0;
            int twoTokenChunks = 0;
            for (String[] row : rows) {
                boolean ok = row[16].isEmpty();
                if (!ok) {
                    assertTrue(row[16].contains("HTTP 500") || row[16].contains("without [DONE]"), row[16]);
                    continue;
                }
                assertEquals(row[7], row[8], "output tokens == max_tokens");
                assertEquals(row[5], row[6], "prompt tokens: ours == server's");
                expectedOut += Long.parseLong(row[8]);
                if (Integer.parseInt(row[10]) < Integer.parseInt(row[8])) twoTokenChunks++;
            }
            assertTrue(twoTokenChunks > 0, "some requests had chunks of two tokens");
            assertEquals(expectedOut, s.path("throughput").path("outputTokens").asLong());

            // Percentiles are ordered and near what the fake does: 20 ms to first token, 3 ms per chunk.
            JsonNode lat = s.path("latencySeconds");
            for (String m : List.of("ttft", "tbt", "e2e")) {
                JsonNode x = lat.path(m);
                assertTrue(x.path("min").asDouble() <= x.path("p50").asDouble() && x.path("p50").asDouble() <= x.path("p90").asDouble()
                        && x.path("p90").asDouble() <= x.path("p99").asDouble() && x.path("p99").asDouble() <= x.path("max").asDouble(), m + ": " + x);
            }
            assertTrue(lat.path("ttft").path("p50").asDouble() >= 0.020 && lat.path("ttft").path("p50").asDouble() < 0.5, lat.toString());
            assertTrue(lat.path("tbt").path("p50").asDouble() >= 0.002 && lat.path("tbt").path("p50").asDouble() < 0.2, lat.toString());
            assertTrue(lat.path("e2e").path("p50").asDouble() > lat.path("ttft").path("p50").asDouble());
            JsonNode unloaded = s.path("unloaded");
            assertEquals(3, unloaded.path("requests").asInt());
            assertTrue(unloaded.path("ttftS").asDouble() >= 0.020 && unloaded.path("tbtS").asDouble() > 0.001, unloaded.toString());
            assertEquals(9, s.path("slo").path("results").size());
            int good = s.path("slo").path("goodRequests").asInt();
            assertTrue(good >= 0 && good <= n - failures500 - cutOffs);
            assertTrue(s.path("throughput").path("peakInFlight").asInt() >= 1);
            assertTrue(r.out().contains("## SLO attainment") && r.out().contains("## Goodput") && r.out().contains("A request is good when"));
            assertTrue(r.out().contains("| 4 | HTTP 500: {\"error\":{\"message\":\"injected failure\"}} |"), r.out());
        }
    }

    @Test
    void replaySendsAtTheTracesOwnTimes() throws IOException {
        StringBuilder csv = new StringBuilder("TIMESTAMP,ContextTokens,GeneratedTokens\n");
        for (int i = 0; i < 8; i++) csv.append(String.format("2023-11-16 18:15:46.%03d0000,%d,%d%n", i * 100, 20 + i, 3 + i));
        Path trace = Files.writeString(tmp.resolve("t.csv"), csv);
        try (FakeOpenAiServer server = new FakeOpenAiServer(tokenizer, 5, 2, k -> false, k -> false)) {
            Path out = tmp.resolve("replay");
            Run r = run("--url", server.url(), "--model", "fake-model", "--tokenizer", Shared.model().resolve("tokenizer.json").toString(),
                    "--trace", trace.toString(), "--replay", "--duration", "0.65", "--out", out.toString(), "--no-progress");
            assertEquals(0, r.code(), r.err());
            List<String[]> rows = Files.readAllLines(out.resolve("requests.csv")).stream().skip(1).map(l -> l.split(",", -1)).toList();
            assertEquals(7, rows.size()); // the row at 0.7 s is past --duration
            for (int i = 0; i < rows.size(); i++) {
                assertEquals(i * 0.1, Double.parseDouble(rows.get(i)[2]), 1e-9, "scheduled");
                assertTrue(Double.parseDouble(rows.get(i)[4]) < 0.25, "sent late by " + rows.get(i)[4]);
                assertEquals(20 + i, Integer.parseInt(rows.get(i)[5]));
                assertEquals(3 + i, Integer.parseInt(rows.get(i)[8]));
            }
            assertTrue(!r.err().contains("done,"), "no progress lines with --no-progress");
            // Unloaded TTFT at the median prompt (23 tokens) and at the 10th / 90th percentile lengths (20, 25): two
            // requests each beside the warm-up and the three median ones.
            assertEquals(1 + 3 + 2 + 2 + 7, server.completions.get());
            JsonNode curve = new ObjectMapper().readTree(out.resolve("summary.json").toFile()).path("unloaded").path("ttftCurve");
            assertEquals(3, curve.size(), curve.toString());
            assertEquals(20, curve.get(0).get(0).asInt());
            assertEquals(25, curve.get(2).get(0).asInt());
            assertTrue(r.err().contains("unloaded TTFT by prompt length: 20 tokens"), r.err());
        }
    }

    /**
     * Runs against one server do not share prompts (its prefix cache would make later runs' prefills free), unless
     * asked to with the same --prompt-seed; the arrivals' --seed does not decide the prompts.
     */
    @Test
    void eachRunHasPromptsOfItsOwnUnlessThePromptSeedIsGiven() throws IOException {
        try (FakeOpenAiServer server = new FakeOpenAiServer(tokenizer, 1, 1, k -> false, k -> false)) {
            java.util.function.Function<String[], List<String>> prompts = extra -> {
                server.prompts.clear();
                List<String> args = new java.util.ArrayList<>(List.of("--url", server.url(), "--tokenizer", Shared.model().toString(),
                        "--trace", Shared.conv().toString(), "--rate", "50", "--max-requests", "6", "--scale-tokens", "0.05",
                        "--max-context", "128", "--seed", "3", "--no-progress", "--median-ttft-only", "--out", tmp.resolve("p" + server.completions.get()).toString()));
                args.addAll(List.of(extra));
                Run r = run(args.toArray(String[]::new));
                assertEquals(0, r.code(), r.err());
                return List.copyOf(server.prompts);
            };
            List<String> a = prompts.apply(new String[0]), b = prompts.apply(new String[0]);
            assertEquals(1 + 3 + 6, a.size());
            for (String p : a) for (String q : b) assertTrue(!p.startsWith(q.substring(0, Math.min(q.length(), 20))), "runs share a prompt start: " + p);
            List<String> c = prompts.apply(new String[] {"--prompt-seed", "11"}), d = prompts.apply(new String[] {"--prompt-seed", "11"});
            // the same prompts; requests in flight together may arrive in either order
            assertEquals(c.stream().sorted().toList(), d.stream().sorted().toList());
        }
    }

    @Test
    void concurrencyCapBoundsRequestsInFlight() throws IOException {
        try (FakeOpenAiServer server = new FakeOpenAiServer(tokenizer, 10, 2, k -> false, k -> false)) {
            Path out = tmp.resolve("capped");
            Run r = run("--url", server.url(), "--tokenizer", Shared.model().toString(), "--trace", Shared.code().toString(),
                    "--rate", "500", "--max-requests", "30", "--scale-tokens", "0.02", "--concurrency", "2", "--out", out.toString());
            assertEquals(0, r.code(), r.err());
            JsonNode s = new ObjectMapper().readTree(out.resolve("summary.json").toFile());
            assertEquals(30, s.path("requests").path("completed").asInt());
            assertEquals(2, s.path("throughput").path("peakInFlight").asInt());
            assertTrue(s.path("requests").path("maxSendLateS").asDouble() > 0.05, "the cap held sends back behind the schedule");
        }
    }

    @Test
    void badInputIsOneClearLineAndANonZeroExit() throws IOException {
        String tok = Shared.model().toString();
        Run missing = run("--url", "http://127.0.0.1:9", "--tokenizer", tok, "--trace", tmp.resolve("none.csv").toString(), "--rate", "1");
        assertEquals(1, missing.code());
        assertEquals("tandem bench serve: error: " + tmp.resolve("none.csv") + ": trace file not found\n", missing.err());

        Path bad = Files.writeString(tmp.resolve("bad.csv"), "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:47.0,12,-3\n");
        Run malformed = run("--url", "http://127.0.0.1:9", "--tokenizer", tok, "--trace", bad.toString(), "--rate", "1");
        assertEquals(1, malformed.code());
        assertTrue(malformed.err().contains("line 3, column 3 (GeneratedTokens): '-3' is not a non-negative integer"), malformed.err());
        assertEquals(1, malformed.err().lines().count());

        int closedPort;
        try (ServerSocket s = new ServerSocket(0)) {
            closedPort = s.getLocalPort();
        }
        Run unreachable = run("--url", "http://127.0.0.1:" + closedPort, "--tokenizer", tok, "--trace", Shared.conv().toString(),
                "--rate", "1", "--max-requests", "2", "--out", tmp.resolve("u").toString());
        assertEquals(1, unreachable.code());
        assertTrue(unreachable.err().strip().endsWith("error: cannot reach http://127.0.0.1:" + closedPort + "/: connection refused"), unreachable.err());

        Run both = run("--url", "http://x", "--tokenizer", tok, "--trace", Shared.conv().toString(), "--rate", "1", "--replay");
        assertEquals(2, both.code());
        assertTrue(both.err().contains("exactly one of --replay"), both.err());
        Run unknown = run("--bogus");
        assertEquals(2, unknown.code());
        assertTrue(unknown.err().contains("unknown option --bogus"));
        Run help = run("--help");
        assertEquals(0, help.code());
        assertTrue(help.out().contains("--scale-tokens"));
    }

    private static boolean isPng(Path p) throws IOException {
        byte[] head = Files.readAllBytes(p);
        return head.length > 8 && head[1] == 'P' && head[2] == 'N' && head[3] == 'G';
    }
}
