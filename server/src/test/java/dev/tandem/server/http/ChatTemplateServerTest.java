package dev.tandem.server.http;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A model whose tokenizer_config.json has a chat template: chat requests go through it, its errors are 400s. */
class ChatTemplateServerTest {
    static final String TEMPLATE = "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}"
            + "{{ raise_exception('this model takes no system messages') }}{% endif %}{{ m['role'] | upper }}: {{ m['content'] }}\\n{% endfor %}"
            + "{% if add_generation_prompt %}ASSISTANT:{% endif %}";

    @TempDir
    static Path dir;
    static TestServer server;

    @BeforeAll
    static void start() throws IOException {
        try (var files = Files.list(TestServer.MODEL_DIR)) {
            for (Path f : files.toList()) {
                if (!f.getFileName().toString().equals("tokenizer_config.json")) Files.createSymbolicLink(dir.resolve(f.getFileName()), f.toAbsolutePath());
            }
        }
        ObjectNode config = (ObjectNode) Http.JSON.readTree(TestServer.MODEL_DIR.resolve("tokenizer_config.json").toFile());
        config.put("chat_template", TEMPLATE.replace("\\n", "\n"));
        Files.writeString(dir.resolve("tokenizer_config.json"), config.toString());
        server = TestServer.start(dir, TestServer.SMALL, c -> c);
    }

    @AfterAll
    static void stop() { server.close(); }

    @Test
    void chatUsesTheModelsTemplateWithASingleBos() {
        Http.Response chat = Http.post(server.url, "/v1/chat/completions",
                "{\"messages\": [{\"role\": \"user\", \"content\": \"Once upon a time\"}], \"max_tokens\": 6, \"temperature\": 0}");
        assertEquals(200, chat.status(), chat.body());
        // The same prompt text through /v1/completions (which adds the BOS itself) gives the same tokens and text.
        Http.Response completion = Http.post(server.url, "/v1/completions",
                "{\"prompt\": \"USER: Once upon a time\\nASSISTANT:\", \"max_tokens\": 6, \"temperature\": 0}");
        assertEquals(completion.json().at("/usage/prompt_tokens").asInt(), chat.json().at("/usage/prompt_tokens").asInt());
        assertEquals(completion.json().at("/choices/0/text").asText(), chat.json().at("/choices/0/message/content").asText());
    }

    @Test
    void aTemplatesRaiseExceptionIs400WithItsMessage() {
        Http.Response r = Http.post(server.url, "/v1/chat/completions",
                "{\"messages\": [{\"role\": \"system\", \"content\": \"Be nice\"}, {\"role\": \"user\", \"content\": \"Hi\"}]}");
        assertEquals(400, r.status(), r.body());
        assertEquals("messages", r.json().at("/error/param").asText());
        assertTrue(r.json().at("/error/message").asText().contains("this model takes no system messages"), r.body());
    }
}
