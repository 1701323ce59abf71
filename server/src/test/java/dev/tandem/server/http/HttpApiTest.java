package dev.tandem.server.http;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpRequest;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The API over raw HTTP: response shapes, stop strings, logprobs, usage chunks, and every error case. */
class HttpApiTest {
    static TestServer server;
    static String url;
    /** Greedy 16 tokens after "Once upon a time" (the golden continuation). */
    static final String GREEDY_16 = " there lived in a little village in a little village in a little village. It";

    @BeforeAll
    static void start() {
        server = TestServer.start();
        url = server.url;
    }

    @AfterAll
    static void stop() { server.close(); }

    static Http.Response complete(String json) { return Http.post(url, "/v1/completions", json); }

    static void assertError(Http.Response r, int status, String param, String... inMessage) {
        assertEquals(status, r.status(), r.body());
        JsonNode e = r.json().get("error");
        assertNotNull(e, r.body());
        assertTrue(e.has("message") && e.has("type") && e.has("param") && e.has("code"), r.body());
        if (param != null) assertEquals(param, e.get("param").asText(), r.body());
        for (String s : inMessage) assertTrue(e.get("message").asText().contains(s), "'" + s + "' not in " + r.body());
    }

    @Test
    void greedyCompletionHasOpenAisShape() {
        JsonNode r = complete("{\"model\": \"" + TestServer.MODEL + "\", \"prompt\": \"Once upon a time\", \"max_tokens\": 16, \"temperature\": 0}").json();
        assertTrue(r.get("id").asText().startsWith("cmpl-"));
        assertEquals("text_completion", r.get("object").asText());
        assertTrue(r.get("created").asLong() > 1_600_000_000L);
        assertEquals(TestServer.MODEL, r.get("model").asText());
        JsonNode choice = r.get("choices").get(0);
        assertEquals(0, choice.get("index").asInt());
        assertEquals(GREEDY_16, choice.get("text").asText());
        assertTrue(choice.get("logprobs").isNull());
        assertEquals("length", choice.get("finish_reason").asText());
        JsonNode usage = r.get("usage");
        assertEquals(5, usage.get("prompt_tokens").asInt());
        assertEquals(16, usage.get("completion_tokens").asInt());
        assertEquals(21, usage.get("total_tokens").asInt());
        assertTrue(usage.get("prompt_tokens_details").get("cached_tokens").isInt());
    }

    @Test
    void promptAsAListOfOneStringOrAsTokenIdsGivesTheSameText() {
        String a = complete("{\"prompt\": [\"Once upon a time\"], \"max_tokens\": 16, \"temperature\": 0}").json().at("/choices/0/text").asText();
        String b = complete("{\"prompt\": [0, 6583, 606, 260, 579], \"max_tokens\": 16, \"temperature\": 0}").json().at("/choices/0/text").asText();
        assertEquals(GREEDY_16, a);
        assertEquals(GREEDY_16, b);
    }

    @Test
    void aStopStringEndsTheTextBeforeIt() {
        JsonNode r = complete("{\"prompt\": \"Once upon a time\", \"max_tokens\": 16, \"temperature\": 0, \"stop\": \"village\"}").json();
        assertEquals(" there lived in a little ", r.at("/choices/0/text").asText());
        assertEquals("stop", r.at("/choices/0/finish_reason").asText());
        assertEquals(6, r.at("/usage/completion_tokens").asInt(), "tokens up to and including the one that completed the stop");
    }

    @Test
    void aStopStringSpanningTokensIsFoundAndNeverStreamed() {
        // "tle vil" spans the tokens " little" and " village"; the earlier-listed stop that never occurs does not matter.
        String body = "{\"prompt\": \"Once upon a time\", \"max_tokens\": 16, \"temperature\": 0, \"stop\": [\"dragon\", \"tle vil\"]";
        JsonNode whole = complete(body + "}").json();
        assertEquals(" there lived in a lit", whole.at("/choices/0/text").asText());
        assertEquals("stop", whole.at("/choices/0/finish_reason").asText());

        Http.Response streamed = complete(body + ", \"stream\": true}");
        assertEquals(200, streamed.status());
        assertTrue(streamed.raw().headers().firstValue("content-type").orElse("").startsWith("text/event-stream"));
        List<String> events = streamed.events();
        assertEquals("[DONE]", events.getLast());
        StringBuilder text = new StringBuilder();
        String finish = null;
        for (String e : events.subList(0, events.size() - 1)) {
            JsonNode chunk = parse(e);
            assertEquals("text_completion", chunk.get("object").asText());
            text.append(chunk.at("/choices/0/text").asText());
            if (!chunk.at("/choices/0/finish_reason").isNull()) finish = chunk.at("/choices/0/finish_reason").asText();
        }
        assertEquals(" there lived in a lit", text.toString());
        assertEquals("stop", finish);
        assertFalse(streamed.body().contains("tle v"), "held-back text leaked: " + streamed.body());
    }

    @Test
    void completionLogprobsAreParallelListsWithTopAlternatives() {
        JsonNode r = complete("{\"prompt\": \"Once upon a time\", \"max_tokens\": 4, \"temperature\": 0, \"logprobs\": 2}").json();
        JsonNode choice = r.get("choices").get(0);
        JsonNode lp = choice.get("logprobs");
        assertEquals(4, lp.get("tokens").size());
        assertEquals(4, lp.get("token_logprobs").size());
        assertEquals(4, lp.get("top_logprobs").size());
        assertEquals(4, lp.get("text_offset").size());
        StringBuilder joined = new StringBuilder();
        for (int i = 0; i < 4; i++) {
            joined.append(lp.get("tokens").get(i).asText());
            assertEquals(i == 0 ? 0 : joined.length() - lp.get("tokens").get(i).asText().length(), lp.get("text_offset").get(i).asInt());
            double chosen = lp.get("token_logprobs").get(i).asDouble();
            assertTrue(chosen <= 0, "logprob " + chosen);
            JsonNode top = lp.get("top_logprobs").get(i);
            assertEquals(2, top.size(), top.toString());
            // Greedy: the chosen token is the most likely one.
            assertEquals(chosen, top.get(lp.get("tokens").get(i).asText()).asDouble(), 1e-5);
            top.properties().forEach(e -> assertTrue(e.getValue().asDouble() <= chosen + 1e-6));
        }
        assertEquals(choice.get("text").asText(), joined.toString());
    }

    @Test
    void chatLogprobsListOneEntryPerTokenWithBytesAndTopLogprobs() {
        JsonNode r = Http.post(url, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}], "
                + "\"max_tokens\": 3, \"temperature\": 0, \"logprobs\": true, \"top_logprobs\": 3}").json();
        assertEquals("chat.completion", r.get("object").asText());
        assertTrue(r.get("id").asText().startsWith("chatcmpl-"));
        JsonNode choice = r.get("choices").get(0);
        assertEquals("assistant", choice.at("/message/role").asText());
        JsonNode content = choice.at("/logprobs/content");
        assertEquals(3, content.size());
        StringBuilder joined = new StringBuilder();
        for (JsonNode t : content) {
            joined.append(t.get("token").asText());
            assertTrue(t.get("logprob").asDouble() <= 0);
            assertTrue(t.get("bytes").isArray());
            assertEquals(3, t.get("top_logprobs").size());
            assertEquals(t.get("token").asText(), t.at("/top_logprobs/0/token").asText(), "greedy picks the most likely token");
            assertTrue(t.at("/top_logprobs/0/bytes").isArray());
        }
        assertEquals(choice.at("/message/content").asText(), joined.toString());
    }

    @Test
    void includeUsageAddsALastChunkWithUsageAndNoChoices() {
        List<String> events = Http.post(url, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}], "
                + "\"max_tokens\": 5, \"temperature\": 0, \"stream\": true, \"stream_options\": {\"include_usage\": true}}").events();
        assertEquals("[DONE]", events.getLast());
        JsonNode first = parse(events.getFirst());
        assertEquals("assistant", first.at("/choices/0/delta/role").asText());
        JsonNode last = parse(events.get(events.size() - 2));
        assertEquals(0, last.get("choices").size());
        assertEquals(5, last.at("/usage/completion_tokens").asInt());
        assertEquals(last.at("/usage/prompt_tokens").asInt() + 5, last.at("/usage/total_tokens").asInt());
        for (String e : events.subList(0, events.size() - 2)) {
            JsonNode chunk = parse(e);
            assertEquals("chat.completion.chunk", chunk.get("object").asText());
            assertTrue(chunk.get("usage").isNull(), e);
        }
        assertEquals("length", parse(events.get(events.size() - 3)).at("/choices/0/finish_reason").asText());
    }

    @Test
    void modelsListsTheServedModel() {
        JsonNode r = Http.get(url, "/v1/models").json();
        assertEquals("list", r.get("object").asText());
        assertEquals(1, r.get("data").size());
        assertEquals(TestServer.MODEL, r.at("/data/0/id").asText());
        assertEquals("model", r.at("/data/0/object").asText());
        assertEquals(512, r.at("/data/0/max_model_len").asInt());
    }

    @Test
    void healthIsOk() {
        Http.Response r = Http.get(url, "/health");
        assertEquals(200, r.status());
        assertEquals("OK", r.body());
    }

    @Test
    void metricsUseVllmNames() {
        complete("{\"prompt\": \"Hello\", \"max_tokens\": 2}");
        Http.Response r = Http.get(url, "/metrics");
        assertEquals(200, r.status());
        assertTrue(r.raw().headers().firstValue("content-type").orElse("").startsWith("text/plain"));
        for (String name : List.of("vllm:time_to_first_token_seconds_bucket", "vllm:inter_token_latency_seconds_bucket",
                "vllm:time_per_output_token_seconds_bucket", "vllm:e2e_request_latency_seconds_count",
                "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:num_preemptions_total",
                "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total", "vllm:request_success_total",
                "vllm:request_queue_time_seconds_bucket", "vllm:request_prefill_time_seconds_bucket")) {
            assertTrue(r.body().contains("\n" + name + "{"), name + " missing from\n" + r.body());
        }
        assertTrue(r.body().contains("model_name=\"" + TestServer.MODEL + "\""));
        assertTrue(Http.metric(url, "vllm:generation_tokens_total") >= 2);
        assertTrue(Http.metric(url, "vllm:e2e_request_latency_seconds_count") >= 1);
        // Every first token's time splits into waiting and prefill: the sums add up to the TTFT sum.
        String text = Http.get(url, "/metrics").body(); // one scrape: a late request of another test cannot land between reads
        double ttft = Http.metricIn(text, "vllm:time_to_first_token_seconds_sum"), queue = Http.metricIn(text, "vllm:request_queue_time_seconds_sum"),
                prefill = Http.metricIn(text, "vllm:request_prefill_time_seconds_sum");
        assertEquals(Http.metricIn(text, "vllm:time_to_first_token_seconds_count"), Http.metricIn(text, "vllm:request_prefill_time_seconds_count"));
        assertTrue(queue > 0 && prefill > 0, queue + " / " + prefill);
        assertEquals(ttft, queue + prefill, 1e-6);
    }

    @Test
    void malformedJsonIs400() {
        assertError(complete("{\"prompt\": \"Hi\", "), 400, null, "not valid JSON");
        assertError(complete("[1, 2]"), 400, null, "JSON object");
    }

    @Test
    void aFieldOfTheWrongTypeIs400NamingIt() {
        assertError(complete("{\"prompt\": \"Hi\", \"max_tokens\": \"ten\"}"), 400, "max_tokens", "'max_tokens' must be an integer");
        assertError(complete("{\"prompt\": \"Hi\", \"temperature\": \"hot\"}"), 400, "temperature", "'temperature'");
        assertError(complete("{\"prompt\": 42}"), 400, "prompt", "'prompt'");
        assertError(complete("{\"prompt\": \"Hi\", \"stop\": 3}"), 400, "stop", "'stop'");
        assertError(complete("{\"prompt\": \"Hi\", \"n\": 2}"), 400, "n", "'n' must be 1");
        assertError(complete("{\"prompt\": \"Hi\", \"top_p\": 1.5}"), 400, "top_p", "'top_p'");
        assertError(complete("{\"max_tokens\": 3}"), 400, "prompt", "'prompt' is required");
        assertError(Http.post(url, "/v1/chat/completions", "{\"messages\": [{\"content\": \"Hi\"}]}"), 400, "messages[0].role", "role");
        assertError(Http.post(url, "/v1/chat/completions", "{\"messages\": \"Hi\"}"), 400, "messages", "'messages'");
    }

    @Test
    void anUnknownModelIs404() {
        assertError(complete("{\"model\": \"gpt-4\", \"prompt\": \"Hi\"}"), 404, null, "gpt-4", TestServer.MODEL);
        assertEquals("model_not_found", complete("{\"model\": \"gpt-4\", \"prompt\": \"Hi\"}").json().at("/error/code").asText());
    }

    @Test
    void promptPlusMaxTokensOverTheContextIs400WithBothNumbers() {
        assertError(complete("{\"prompt\": \"Once upon a time\", \"max_tokens\": 1000}"), 400, "max_tokens", "5 tokens", "1000", "512");
        int[] ids = new int[600];
        StringBuilder list = new StringBuilder("[");
        for (int i = 0; i < ids.length; i++) list.append(i == 0 ? "" : ",").append(300);
        assertError(complete("{\"prompt\": " + list + "]}"), 400, "prompt", "600 tokens", "512");
    }

    @Test
    void tokenIdsOutsideTheVocabularyAre400() {
        assertError(complete("{\"prompt\": [0, 99999], \"max_tokens\": 2}"), 400, null, "99999");
    }

    @Test
    void unknownPathIs404AndWrongMethodIs405() {
        assertError(Http.get(url, "/v1/engines"), 404, null, "/v1/engines");
        Http.Response r = Http.get(url, "/v1/completions");
        assertError(r, 405, null, "POST");
        assertEquals("POST", r.raw().headers().firstValue("allow").orElse(""));
        assertError(Http.post(url, "/health", "{}"), 405, null, "GET");
    }

    @Test
    void aBodyOverTheLimitIs413() {
        String big = "{\"prompt\": \"" + "a".repeat((int) ServerConfig.DEFAULT_MAX_BODY + 1024) + "\"}";
        assertError(complete(big), 413, null, "over the limit");
        // Chunked: no Content-Length to check up front.
        HttpRequest chunked = HttpRequest.newBuilder(URI.create(url + "/v1/completions")).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.ByteArrayInputStream(big.getBytes()))).build();
        assertError(Http.send(chunked), 413, null, "over the limit");
        // The connection stays usable.
        assertEquals(200, Http.get(url, "/health").status());
    }

    static JsonNode parse(String json) {
        try {
            return Http.JSON.readTree(json);
        } catch (java.io.IOException e) {
            throw new AssertionError(json, e);
        }
    }
}
