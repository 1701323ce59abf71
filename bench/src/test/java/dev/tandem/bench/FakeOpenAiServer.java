package dev.tandem.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.tandem.core.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntPredicate;

/**
 * A stand-in for "any OpenAI-compatible endpoint": streams max_tokens tokens as SSE chunks with small delays,
 * every fifth chunk carrying two tokens (so token counts must come from usage), then usage and [DONE].
 * Completions whose 1-based arrival number matches {@code fail500} get HTTP 500; those matching {@code cutOff}
 * send one chunk and end the stream without finish_reason or [DONE].
 */
final class FakeOpenAiServer implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    final AtomicInteger completions = new AtomicInteger();
    /** Every completion's prompt, in arrival order. */
    final java.util.List<String> prompts = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final HttpServer server;
    private final Tokenizer tokenizer;
    private final long firstTokenMillis, tokenMillis;
    private final IntPredicate fail500, cutOff;

    FakeOpenAiServer(Tokenizer tokenizer, long firstTokenMillis, long tokenMillis, IntPredicate fail500, IntPredicate cutOff) throws IOException {
        this.tokenizer = tokenizer;
        this.firstTokenMillis = firstTokenMillis;
        this.tokenMillis = tokenMillis;
        this.fail500 = fail500;
        this.cutOff = cutOff;
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/v1/models", ex -> reply(ex, 200, "{\"object\":\"list\",\"data\":[{\"id\":\"fake-model\",\"object\":\"model\"}]}"));
        server.createContext("/v1/completions", this::complete);
        server.createContext("/metrics", ex -> reply(ex, 200, "# TYPE fake_completions_total counter\nfake_completions_total " + completions.get() + "\n"));
        server.start();
    }

    String url() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    private void complete(HttpExchange ex) throws IOException {
        int number = completions.incrementAndGet();
        JsonNode req = JSON.readTree(ex.getRequestBody());
        if (!req.path("stream").asBoolean() || !req.path("ignore_eos").asBoolean() || !req.path("model").asText().equals("fake-model")) {
            reply(ex, 400, "{\"error\":{\"message\":\"bad request: " + req + "\"}}");
            return;
        }
        if (fail500.test(number)) {
            reply(ex, 500, "{\"error\":{\"message\":\"injected failure\"}}");
            return;
        }
        prompts.add(req.path("prompt").asText());
        int maxTokens = req.path("max_tokens").asInt();
        int promptTokens = tokenizer.encode(req.path("prompt").asText(), true).length;
        ex.getResponseHeaders().set("Content-Type", "text/event-stream");
        ex.sendResponseHeaders(200, 0);
        try (OutputStream out = ex.getResponseBody()) {
            sleep(firstTokenMillis);
            if (cutOff.test(number)) { // one token, then the stream breaks off: no finish_reason, no [DONE]
                event(out, "{\"id\":\"cmpl-" + number + "\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\" tok\",\"finish_reason\":null}]}");
                return;
            }
            int sent = 0, chunk = 0;
            while (sent < maxTokens) {
                if (chunk > 0) sleep(tokenMillis);
                int k = (chunk % 5 == 4 && maxTokens - sent >= 2) ? 2 : 1;
                sent += k;
                String finish = sent == maxTokens ? "\"length\"" : "null";
                event(out, "{\"id\":\"cmpl-" + number + "\",\"object\":\"text_completion\",\"model\":\"fake-model\",\"choices\":[{\"index\":0,\"text\":\""
                        + " tok".repeat(k) + "\",\"finish_reason\":" + finish + "}]}");
                chunk++;
            }
            event(out, "{\"id\":\"cmpl-" + number + "\",\"object\":\"text_completion\",\"model\":\"fake-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":"
                    + promptTokens + ",\"completion_tokens\":" + maxTokens + ",\"total_tokens\":" + (promptTokens + maxTokens) + "}}");
            event(out, "[DONE]");
        }
    }

    private static void event(OutputStream out, String data) throws IOException {
        out.write(("data: " + data + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private static void reply(HttpExchange ex, int status, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, b.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(b);
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
