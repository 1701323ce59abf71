package dev.tandem.server.api;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.core.sampling.SamplingParams;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CompletionRequestTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static CompletionRequest parse(CompletionRequest.Endpoint e, String json) {
        try {
            return CompletionRequest.parse(e, JSON.readTree(json));
        } catch (com.fasterxml.jackson.core.JsonProcessingException x) {
            throw new AssertionError(x);
        }
    }

    static InvalidRequestException invalid(CompletionRequest.Endpoint e, String json) {
        return assertThrows(InvalidRequestException.class, () -> parse(e, json));
    }

    @Test
    void defaultsFollowOpenAi() {
        CompletionRequest r = parse(CompletionRequest.Endpoint.COMPLETIONS, "{\"prompt\": \"Hi\"}");
        assertEquals(1.0f, r.temperature());
        assertEquals(1.0f, r.topP());
        assertEquals(0, r.topK());
        assertTrue(r.maxTokens().isEmpty());
        assertTrue(r.seed().isEmpty());
        assertEquals(-1, r.logprobs());
        assertFalse(r.stream());
        SamplingParams p = r.sampling(42);
        assertEquals(42, p.seed());
        assertEquals(64, p.repeatLastN());
    }

    @Test
    void everyParameterMapsToTheSampler() {
        CompletionRequest r = parse(CompletionRequest.Endpoint.COMPLETIONS, "{\"prompt\": [1, 2, 3], \"max_tokens\": 7, \"temperature\": 0.5, "
                + "\"top_p\": 0.9, \"top_k\": 40, \"min_p\": 0.05, \"seed\": 9, \"stop\": [\"a\", \"\", \"b\"], \"presence_penalty\": 0.5, "
                + "\"frequency_penalty\": -0.5, \"repetition_penalty\": 1.1, \"logprobs\": 3, \"ignore_eos\": true, \"stream\": true, "
                + "\"stream_options\": {\"include_usage\": true}}");
        assertArrayEquals(new int[]{1, 2, 3}, ((Prompt.Tokens) r.prompt()).ids());
        assertEquals(new SamplingParams(0.5f, 40, 0.9f, 0.05f, 1.1f, 64, 0.5f, -0.5f, 9), r.sampling(1));
        assertEquals(7, r.maxTokens().getAsInt());
        assertEquals(List.of("a", "b"), r.stop());
        assertEquals(3, r.logprobs());
        assertTrue(r.ignoreEos() && r.stream() && r.includeUsage());
    }

    @Test
    void chatTakesMaxCompletionTokensAndBooleanLogprobs() {
        CompletionRequest r = parse(CompletionRequest.Endpoint.CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": "
                + "[{\"type\": \"text\", \"text\": \"Hi \"}, {\"type\": \"text\", \"text\": \"there\"}]}], \"max_tokens\": 3, "
                + "\"max_completion_tokens\": 5, \"logprobs\": true, \"top_logprobs\": 2}");
        assertEquals(List.of(new ChatMessage("user", "Hi there")), r.messages());
        assertEquals(5, r.maxTokens().getAsInt());
        assertEquals(2, r.logprobs());
        assertEquals(0, parse(CompletionRequest.Endpoint.CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"logprobs\": true}").logprobs());
    }

    @Test
    void errorsNameTheField() {
        var c = CompletionRequest.Endpoint.COMPLETIONS;
        assertEquals("max_tokens", invalid(c, "{\"prompt\": \"x\", \"max_tokens\": 0}").param());
        assertEquals("max_tokens", invalid(c, "{\"prompt\": \"x\", \"max_tokens\": 1.5}").param());
        assertEquals("seed", invalid(c, "{\"prompt\": \"x\", \"seed\": \"s\"}").param());
        assertEquals("prompt", invalid(c, "{\"prompt\": [\"a\", \"b\"]}").param());
        assertEquals("prompt", invalid(c, "{\"prompt\": [1, \"b\"]}").param());
        assertEquals("echo", invalid(c, "{\"prompt\": \"x\", \"echo\": true}").param());
        assertEquals("logprobs", invalid(c, "{\"prompt\": \"x\", \"logprobs\": 21}").param());
        assertEquals("presence_penalty", invalid(c, "{\"prompt\": \"x\", \"presence_penalty\": 3}").param());
        assertEquals("stream_options.include_usage", invalid(c, "{\"prompt\": \"x\", \"stream_options\": {\"include_usage\": 1}}").param());
        var chat = CompletionRequest.Endpoint.CHAT;
        assertEquals("top_logprobs", invalid(chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_logprobs\": 2}").param());
        assertEquals("messages[0].content", invalid(chat, "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}").param());
        assertEquals("messages", invalid(chat, "{\"messages\": []}").param());
    }
}
