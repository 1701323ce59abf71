package dev.tandem.server.http;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.ConnectException;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Graceful stop: running requests finish (or are cancelled at the deadline), new connections are refused. */
class ShutdownTest {
    static final String LONG = "{\"prompt\": \"Once upon a time\", \"max_tokens\": 400, \"ignore_eos\": true, \"temperature\": 0, \"stream\": true}";

    /** Reads a stream to its end: the last chunk's finish_reason (or null when the stream broke off). */
    static String finishReason(Http.Stream s) throws IOException {
        String finish = null, e;
        while ((e = s.nextEvent()) != null && !e.equals("[DONE]")) {
            JsonNode chunk = Http.JSON.readTree(e);
            if (!chunk.at("/choices/0/finish_reason").isNull()) finish = chunk.at("/choices/0/finish_reason").asText();
        }
        return e == null ? null : finish;
    }

    @Test
    void requestsStillRunningAtTheDeadlineAreCancelledAndTheStopReturns() throws Exception {
        try (TestServer s = TestServer.start(TestServer.SMALL, c -> c.withShutdownTimeout(Duration.ofMillis(300)));
             Http.Stream stream = new Http.Stream(s.url, "/v1/completions", LONG)) {
            assertNotNull(stream.nextEvent());
            long t0 = System.nanoTime();
            Thread stopper = Thread.ofVirtual().start(s.server::shutdown);
            assertEquals("cancelled", finishReason(stream));
            stopper.join(10_000);
            assertTrue(System.nanoTime() - t0 < 5_000_000_000L, "stop took " + (System.nanoTime() - t0) / 1e6 + " ms");
            // Engine stats are a snapshot taken at the end of each engine step, just after the finish callbacks.
            long end = System.nanoTime() + 2_000_000_000L;
            while (s.engine.stats().running() != 0 && System.nanoTime() < end) Thread.sleep(5);
            assertEquals(0, s.engine.stats().running());
        }
    }

    @Test
    void sigtermLetsTheRunningStreamFinishRefusesNewConnectionsAndExitsZero() throws Exception {
        String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String classpath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> cmd = new ArrayList<>(List.of(javaBin, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-cp", classpath, "dev.tandem.server.cli.Main", "serve", "--model", TestServer.MODEL_DIR.toString(), "--port", "0",
                "--kv-cache-memory", "64M", "--threads", "2"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            StringBuilder log = new StringBuilder();
            String url = null, line;
            Pattern ready = Pattern.compile("ready in .* at (http://\\S+)");
            while (url == null && (line = out.readLine()) != null) {
                log.append(line).append('\n');
                Matcher m = ready.matcher(line);
                if (m.find()) url = m.group(1);
            }
            assertNotNull(url, "no ready line in:\n" + log);
            assertTrue(url.startsWith("http://127.0.0.1:"), url);
            try (Http.Stream stream = new Http.Stream(url, "/v1/completions",
                    LONG.replace("\"max_tokens\": 400", "\"max_tokens\": 60"))) {
                assertNotNull(stream.nextEvent());
                assertTrue(p.toHandle().destroy()); // SIGTERM (Process.destroy would also close our end of its output)
                assertEquals("length", finishReason(stream), "the running stream finishes normally");
            }
            assertTrue(p.waitFor(30, TimeUnit.SECONDS), "still running after SIGTERM");
            String rest = out.lines().collect(java.util.stream.Collectors.joining("\n"));
            assertEquals(0, p.exitValue(), log + rest);
            assertTrue(rest.contains("stopped"), rest);
            URI dead = URI.create(url);
            assertThrows(ConnectException.class, () -> new Socket(dead.getHost(), dead.getPort()).close());
        } finally {
            p.destroyForcibly();
        }
    }
}
