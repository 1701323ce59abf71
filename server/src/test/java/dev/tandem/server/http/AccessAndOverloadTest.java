package dev.tandem.server.http;

import dev.tandem.engine.EngineConfig;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** --api-key and a full waiting queue: 401 and 429, while /health keeps answering. */
class AccessAndOverloadTest {
    static final String CHAT = "{\"messages\": [{\"role\": \"user\", \"content\": \"Tell me a long story\"}], \"max_tokens\": 400, "
            + "\"ignore_eos\": true, \"temperature\": 0, \"stream\": true}";

    @Test
    void withAnApiKeyRequestsNeedTheBearerTokenButHealthAndMetricsStayOpen() {
        try (TestServer s = TestServer.start(TestServer.SMALL, c -> c.withApiKey("sekret"))) {
            String body = "{\"prompt\": \"Hi\", \"max_tokens\": 2}";
            Http.Response none = Http.post(s.url, "/v1/completions", body);
            assertEquals(401, none.status(), none.body());
            assertEquals("invalid_api_key", none.json().at("/error/code").asText());
            assertTrue(none.json().at("/error/message").asText().contains("Authorization: Bearer"));
            assertEquals(401, Http.post(s.url, "/v1/completions", body, "Authorization", "Bearer wrong").status());
            assertEquals(401, Http.get(s.url, "/v1/models", "Authorization", "sekret").status());
            assertEquals(200, Http.post(s.url, "/v1/completions", body, "Authorization", "Bearer sekret").status());
            assertEquals(200, Http.get(s.url, "/v1/models", "Authorization", "Bearer sekret").status());
            assertEquals(200, Http.get(s.url, "/health").status());
            assertEquals(200, Http.get(s.url, "/metrics").status());
        }
    }

    @Test
    void aFullWaitingQueueIs429AndHealthStillAnswers() throws Exception {
        EngineConfig oneAtATime = TestServer.SMALL.withMaxNumSeqs(1).withMaxQueue(1);
        try (TestServer s = TestServer.start(oneAtATime, c -> c);
             Http.Stream running = new Http.Stream(s.url, "/v1/chat/completions", CHAT)) {
            assertNotNull(running.nextEvent()); // role chunk: submitted
            assertNotNull(running.nextEvent()); // first token: running, so no longer waiting
            try (Http.Stream waiting = new Http.Stream(s.url, "/v1/chat/completions", CHAT)) {
                assertNotNull(waiting.nextEvent()); // submitted, and waiting behind the running one
                Http.Response refused = Http.post(s.url, "/v1/completions", "{\"prompt\": \"Hi\", \"max_tokens\": 2}");
                assertEquals(429, refused.status(), refused.body());
                assertEquals("rate_limit_exceeded", refused.json().at("/error/code").asText());
                assertTrue(refused.json().at("/error/message").asText().contains("queue is full"));

                // Overloaded, /health still answers, and quickly, many times at once.
                List<CompletableFuture<Integer>> health = new ArrayList<>();
                long t0 = System.nanoTime();
                for (int i = 0; i < 32; i++) health.add(CompletableFuture.supplyAsync(() -> Http.get(s.url, "/health").status()));
                for (CompletableFuture<Integer> h : health) assertEquals(200, h.join());
                assertTrue(System.nanoTime() - t0 < 5_000_000_000L, "health took " + (System.nanoTime() - t0) / 1e6 + " ms");
                assertEquals(200, Http.get(s.url, "/v1/models").status());
            }
        }
    }
}
