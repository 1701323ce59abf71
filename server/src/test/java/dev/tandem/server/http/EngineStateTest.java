package dev.tandem.server.http;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What the server does to the engine: cancellation on disconnect, prefix caching, batching that keeps outputs exact. */
class EngineStateTest {
    static TestServer server;

    static final String[] PROMPTS = {"Once upon a time", "The little dog", "Tom and Lily went to", "The old king had three daughters",
            "It was a cold winter night, and", "\"Where are you going?\" asked the", "She opened the door", "In the morning the"};

    @BeforeAll
    static void start() { server = TestServer.start(); }

    @AfterAll
    static void stop() { server.close(); }

    static String greedy(String url, String prompt, int maxTokens) {
        Http.Response r = Http.post(url, "/v1/completions", "{\"prompt\": " + Http.JSON.valueToTree(prompt) + ", \"max_tokens\": " + maxTokens
                + ", \"temperature\": 0, \"ignore_eos\": true}");
        assertEquals(200, r.status(), r.body());
        return r.json().at("/choices/0/text").asText();
    }

    static void awaitMetric(String name, double value) throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        double v;
        while ((v = Http.metric(server.url, name)) != value) {
            if (System.nanoTime() > deadline) throw new AssertionError(name + " is " + v + ", expected " + value);
            Thread.sleep(20);
        }
    }

    @Test
    void closingAStreamMidWayCancelsTheRequestAndFreesItsKvCache() throws Exception {
        awaitMetric("vllm:kv_cache_usage_perc", 0);
        double generatedBefore = Http.metric(server.url, "vllm:generation_tokens_total");
        try (Http.Stream s = new Http.Stream(server.url, "/v1/completions",
                "{\"prompt\": \"Once upon a time\", \"max_tokens\": 500, \"ignore_eos\": true, \"temperature\": 0, \"stream\": true}")) {
            assertNotNull(s.nextEvent());
            assertNotNull(s.nextEvent());
            assertTrue(Http.metric(server.url, "vllm:kv_cache_usage_perc") > 0, "the running request holds KV blocks");
        }
        awaitMetric("vllm:kv_cache_usage_perc", 0);
        awaitMetric("vllm:num_requests_running", 0);
        double generated = Http.metric(server.url, "vllm:generation_tokens_total") - generatedBefore;
        assertTrue(generated < 100, "cancelled only after " + generated + " of 500 tokens");
    }

    @Test
    void aSharedLongPrefixHitsThePrefixCacheAndGivesTheFreshServersOutput() {
        String prefix = "The old king had three daughters, and he loved them all, but the youngest was the fairest of them. "
                + "Every morning she walked in the garden of the castle, where the roses grew tall and the birds sang in the trees. "
                + "One day a stranger came to the gate and asked to see the king, for he had travelled a long way over the mountains.";
        greedy(server.url, prefix + " The first daughter said", 8);
        double hits = Http.metric(server.url, "vllm:prefix_cache_hits_total");
        String second = greedy(server.url, prefix + " The youngest daughter", 12);
        assertTrue(Http.metric(server.url, "vllm:prefix_cache_hits_total") >= hits + 48,
                "hits went from " + hits + " to " + Http.metric(server.url, "vllm:prefix_cache_hits_total"));
        try (TestServer fresh = TestServer.start()) {
            assertEquals(second, greedy(fresh.url, prefix + " The youngest daughter", 12));
            assertEquals(0, Http.metric(fresh.url, "vllm:prefix_cache_hits_total"));
        }
    }

    @Test
    void sixteenConcurrentGreedyRequestsEachGetTheirSoloText() {
        int max = 24;
        String[] solo = new String[16];
        for (int i = 0; i < 16; i++) solo[i] = i < PROMPTS.length ? greedy(server.url, PROMPTS[i], max) : solo[i - PROMPTS.length];
        List<CompletableFuture<String>> all = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            String prompt = PROMPTS[i % PROMPTS.length];
            all.add(CompletableFuture.supplyAsync(() -> greedy(server.url, prompt, max)));
        }
        for (int i = 0; i < 16; i++) assertEquals(solo[i], all.get(i).join(), "request " + i + " (" + PROMPTS[i % PROMPTS.length] + ")");
    }
}
