package dev.tandem.server.http;

import com.fasterxml.jackson.databind.JsonNode;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.errors.NotFoundException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The official OpenAI Java SDK as the client: what works against OpenAI works against Tandem. */
class OpenAiSdkTest {
    static TestServer server;
    static OpenAIClient client;

    @BeforeAll
    static void start() {
        server = TestServer.start();
        client = OpenAIOkHttpClient.builder().baseUrl(server.url + "/v1").apiKey("unused").maxRetries(0).build();
    }

    @AfterAll
    static void stop() {
        client.close();
        server.close();
    }

    @Test
    void greedyCompletionIsTheGoldenContinuation() throws IOException {
        JsonNode golden = Http.JSON.readTree(TestServer.SHARED.resolve("models/gutenberg-stories/golden.json").toFile()).get("prompts").get(0);
        assertEquals("Once upon a time", golden.get("prompt").asText());
        int[] ids = new int[16];
        for (int i = 0; i < ids.length; i++) ids[i] = golden.get("target").get("generated_ids").get(i).asInt();
        String expected = server.engine.tokenizer().decode(ids);

        Completion c = client.completions().create(CompletionCreateParams.builder()
                .model(TestServer.MODEL).prompt("Once upon a time").maxTokens(16).temperature(0.0).build());

        assertEquals(expected, c.choices().get(0).text(), "golden ids " + Arrays.toString(ids));
        assertTrue(golden.get("target").get("generated_text").asText().startsWith(c.choices().get(0).text()));
        assertEquals("length", c.choices().get(0).finishReason().asString());
        assertEquals(5, c.usage().orElseThrow().promptTokens());
        assertEquals(16, c.usage().orElseThrow().completionTokens());
        assertTrue(c.id().startsWith("cmpl-"));
    }

    @Test
    void streamedChatDeltasConcatenateToTheWholeReply() {
        ChatCompletionCreateParams params = ChatCompletionCreateParams.builder()
                .model(TestServer.MODEL).addSystemMessage("You tell stories.").addUserMessage("Tell me about the old king")
                .maxCompletionTokens(20).temperature(0.0).build();
        ChatCompletion whole = client.chat().completions().create(params);
        String text = whole.choices().get(0).message().content().orElseThrow();
        assertFalse(text.isEmpty());

        StringBuilder streamed = new StringBuilder();
        String[] finish = {null};
        try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(params)) {
            stream.stream().forEach(chunk -> chunk.choices().forEach(choice -> {
                choice.delta().content().ifPresent(streamed::append);
                choice.finishReason().ifPresent(f -> finish[0] = f.asString());
            }));
        }
        assertEquals(text, streamed.toString());
        assertEquals(whole.choices().get(0).finishReason().asString(), finish[0]);
    }

    @Test
    void anUnknownModelIsNotFound() {
        NotFoundException e = assertThrows(NotFoundException.class, () -> client.completions().create(CompletionCreateParams.builder()
                .model("gpt-4o").prompt("Hello").maxTokens(4).build()));
        assertEquals(404, e.statusCode());
        assertTrue(e.getMessage().contains("gpt-4o"), e.getMessage());
    }
}
