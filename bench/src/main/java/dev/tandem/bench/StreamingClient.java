package dev.tandem.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.channels.UnresolvedAddressException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;

/**
 * Talks to an OpenAI-compatible server: {@code GET /v1/models} and streamed {@code POST /v1/completions}, over
 * HTTP/1.1 with the JDK client. The SSE stream is read line by line on the calling (virtual) thread so each
 * chunk is stamped the moment it arrives. Failures are returned in the {@link Completion}, never thrown, so the
 * benchmark counts them.
 */
public final class StreamingClient {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final HttpClient http;
    private final URI base;
    private final String apiKey;
    private final Duration timeout;

    /** @param timeout how long to wait for a response's headers (the stream itself may run longer) */
    public StreamingClient(String baseUrl, String apiKey, Duration timeout) {
        String trimmed = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
        try {
            this.base = URI.create(trimmed + "/");
            if (base.getScheme() == null || base.getHost() == null) throw new IllegalArgumentException("no scheme or host");
        } catch (IllegalArgumentException e) {
            throw new BenchException("--url " + baseUrl + ": not a valid URL (expected e.g. http://127.0.0.1:8000)");
        }
        this.apiKey = apiKey;
        this.timeout = timeout;
        this.http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10))
                .build();
    }

    public URI base() {
        return base;
    }

    /** GET /metrics as text, or null when the server has none (an optional extra for the report). */
    public String metricsText() {
        try {
            HttpResponse<String> r = http.send(request("metrics").GET().build(), HttpResponse.BodyHandlers.ofString());
            return r.statusCode() == 200 ? r.body() : null;
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    /** The first model id the server lists; an unreachable server or a bad answer is a {@link BenchException}. */
    public String firstModel() {
        HttpRequest.Builder b = request("v1/models").GET();
        HttpResponse<String> r;
        try {
            r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw unreachable(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BenchException("interrupted");
        }
        if (r.statusCode() != 200) {
            throw new BenchException("GET " + base.resolve("v1/models") + " answered HTTP " + r.statusCode() + ": " + snippet(r.body())
                    + " (pass --model NAME)");
        }
        try {
            JsonNode id = JSON.readTree(r.body()).path("data").path(0).path("id");
            if (!id.isTextual()) throw new BenchException("GET " + base.resolve("v1/models") + " lists no model id (pass --model NAME)");
            return id.asText();
        } catch (IOException e) {
            throw new BenchException("GET " + base.resolve("v1/models") + " answered with invalid JSON: " + snippet(r.body()) + " (pass --model NAME)");
        }
    }

    /** Sends one streamed completion and reads it to the end; {@code onTextChunk} runs for every chunk with text. */
    public Completion complete(String model, String prompt, int maxTokens, Runnable onTextChunk) {
        ObjectNode body = JSON.createObjectNode();
        body.put("model", model);
        body.put("prompt", prompt);
        body.put("max_tokens", maxTokens);
        body.put("ignore_eos", true); // force exactly max_tokens, as the trace says, not an early stop
        body.put("temperature", 0);
        body.put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        HttpRequest req = request("v1/completions")
                .header("Content-Type", "application/json")
                .header("Accept", "text/event-stream")
                .timeout(timeout)
                .POST(HttpRequest.BodyPublishers.ofString(body.toString(), StandardCharsets.UTF_8))
                .build();
        StreamState s = new StreamState(System.nanoTime());
        try {
            HttpResponse<InputStream> r = http.send(req, HttpResponse.BodyHandlers.ofInputStream());
            s.status = r.statusCode();
            try (InputStream in = r.body()) {
                if (s.status != 200) {
                    return s.fail("HTTP " + s.status + ": " + snippet(new String(in.readNBytes(2000), StandardCharsets.UTF_8)));
                }
                return read(new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8)), s, onTextChunk);
            }
        } catch (HttpConnectTimeoutException e) {
            return s.fail("cannot reach " + base + ": connect timed out");
        } catch (HttpTimeoutException e) {
            return s.fail("no response within " + timeout.toSeconds() + " s");
        } catch (ConnectException e) {
            return s.fail("cannot reach " + base + ": " + connectProblem(e));
        } catch (IOException e) {
            return s.fail((s.status == 0 ? "request failed: " : "stream broken after " + s.chunks + " text chunks: ") + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return s.fail("interrupted");
        }
    }

    private static Completion read(BufferedReader in, StreamState s, Runnable onTextChunk) throws IOException {
        StringBuilder data = new StringBuilder();
        long dataNanos = 0;
        for (String line; (line = in.readLine()) != null; ) {
            if (line.startsWith("data:")) {
                if (data.isEmpty()) dataNanos = System.nanoTime();
                else data.append('\n');
                data.append(line.startsWith("data: ") ? line.substring(6) : line.substring(5));
            } else if (line.isEmpty() && !data.isEmpty()) {
                String done = event(data.toString(), dataNanos, s, onTextChunk);
                if (done != null) return done.isEmpty() ? s.finish() : s.fail(done);
                data.setLength(0);
            }
            // other SSE fields (event:, id:, retry:) and comments (":") carry nothing we measure
        }
        if (!data.isEmpty()) {
            String done = event(data.toString(), dataNanos, s, onTextChunk);
            if (done != null) return done.isEmpty() ? s.finish() : s.fail(done);
        }
        // Some servers close without [DONE]; a finish_reason shows the generation itself completed.
        if (s.finishReason != null) return s.finish();
        return s.fail("stream ended without [DONE] after " + s.chunks + " text chunks");
    }

    /** @return null to keep reading, "" at [DONE], or an error message */
    private static String event(String data, long nanos, StreamState s, Runnable onTextChunk) {
        if (data.strip().equals("[DONE]")) return "";
        JsonNode chunk;
        try {
            chunk = JSON.readTree(data);
        } catch (IOException e) {
            return "invalid JSON in stream: " + snippet(data);
        }
        if (chunk.hasNonNull("error")) return "error in stream: " + snippet(chunk.get("error").toString());
        JsonNode choice = chunk.path("choices").path(0);
        String text = choice.path("text").asText("");
        if (!text.isEmpty()) {
            s.addChunk(nanos);
            onTextChunk.run();
        }
        JsonNode finish = choice.path("finish_reason");
        if (finish.isTextual()) s.finishReason = finish.asText();
        JsonNode usage = chunk.path("usage");
        if (usage.isObject()) {
            if (usage.path("completion_tokens").isInt()) s.completionTokens = usage.get("completion_tokens").asInt();
            if (usage.path("prompt_tokens").isInt()) s.promptTokens = usage.get("prompt_tokens").asInt();
        }
        return null;
    }

    private HttpRequest.Builder request(String path) {
        HttpRequest.Builder b = HttpRequest.newBuilder(base.resolve(path));
        if (apiKey != null) b.header("Authorization", "Bearer " + apiKey);
        return b;
    }

    private BenchException unreachable(IOException e) {
        String why = e instanceof HttpConnectTimeoutException ? "connect timed out"
                : e instanceof ConnectException c ? connectProblem(c) : e.toString();
        return new BenchException("cannot reach " + base + ": " + why);
    }

    private String connectProblem(ConnectException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof UnresolvedAddressException) return "unknown host '" + base.getHost() + "'";
        }
        return "connection refused";
    }

    private static String snippet(String s) {
        String one = s.replaceAll("\\s+", " ").strip();
        return one.length() > 300 ? one.substring(0, 300) + "..." : one;
    }

    /** Mutable while one stream is read, then frozen into a {@link Completion}. */
    private static final class StreamState {
        final long sendNanos;
        int status;
        long[] chunkNanos = new long[64];
        int chunks;
        int completionTokens = -1, promptTokens = -1;
        String finishReason;

        StreamState(long sendNanos) {
            this.sendNanos = sendNanos;
        }

        void addChunk(long nanos) {
            if (chunks == chunkNanos.length) chunkNanos = Arrays.copyOf(chunkNanos, chunks * 2);
            chunkNanos[chunks++] = nanos;
        }

        Completion finish() {
            if (chunks == 0) return fail("stream completed without any text");
            return new Completion(status, null, sendNanos, System.nanoTime(), Arrays.copyOf(chunkNanos, chunks), completionTokens, promptTokens, finishReason);
        }

        Completion fail(String error) {
            return new Completion(status, error, sendNanos, System.nanoTime(), Arrays.copyOf(chunkNanos, chunks), completionTokens, promptTokens, finishReason);
        }
    }
}
