package dev.tandem.server.http;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A server speculating with the 3M draft: greedy text unchanged, "speculative": false per request, spec metrics in /metrics. */
class SpeculativeServerTest {
    static TestServer server;

    @BeforeAll
    static void start() { server = TestServer.speculative(TestServer.SHARED.resolve("models/gutenberg-stories-llama-3m"), 4); }

    @AfterAll
    static void stop() { server.close(); }

    @Test
    void greedyTextIsTheSameWithAndWithoutSpeculationAndOnlySpeculatingRequestsCountDrafts() throws Exception {
        String plainBody = "{\"prompt\": \"Tom and Lily went to\", \"max_tokens\": 40, \"temperature\": 0, \"ignore_eos\": true, \"speculative\": false}";
        double drafts0 = Http.metric(server.url, "vllm:spec_decode_num_drafts_total");
        Http.Response plain = Http.post(server.url, "/v1/completions", plainBody);
        assertEquals(200, plain.status(), plain.body());
        Thread.sleep(100); // the engine publishes its counters after the step
        assertEquals(drafts0, Http.metric(server.url, "vllm:spec_decode_num_drafts_total"), "a request with speculative: false drafts nothing");

        Http.Response spec = Http.post(server.url, "/v1/completions", plainBody.replace("\"speculative\": false", "\"speculative\": true"));
        assertEquals(200, spec.status(), spec.body());
        assertEquals(plain.json().at("/choices/0/text").asText(), spec.json().at("/choices/0/text").asText());
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (Http.metric(server.url, "vllm:spec_decode_num_drafts_total") == drafts0 && System.nanoTime() < deadline) Thread.sleep(20);
        double drafts = Http.metric(server.url, "vllm:spec_decode_num_drafts_total") - drafts0;
        double accepted = Http.metric(server.url, "vllm:spec_decode_num_accepted_tokens_total");
        assertTrue(drafts > 0 && drafts < 40, "40 tokens in fewer than 40 verifications: " + drafts);
        assertTrue(accepted > 0, "accepted tokens counted");
        double rate = Http.metric(server.url, "vllm:spec_decode_draft_acceptance_rate");
        assertTrue(rate > 0 && rate <= 1, "acceptance rate " + rate);
        assertTrue(Http.metric(server.url, "vllm:spec_decode_num_accepted_tokens_per_pos_total") > 0, "position 0 accepted");
        assertTrue(Http.metric(server.url, "tandem:spec_decode_verify_seconds_total") > 0);
    }

    @Test
    void aNonBooleanSpeculativeFieldIsABadRequestNamingIt() {
        Http.Response r = Http.post(server.url, "/v1/completions", "{\"prompt\": \"Hi\", \"max_tokens\": 2, \"speculative\": \"no\"}");
        assertEquals(400, r.status());
        assertEquals("speculative", r.json().at("/error/param").asText());
    }
}
