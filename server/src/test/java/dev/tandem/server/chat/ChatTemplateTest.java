package dev.tandem.server.chat;

import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.server.api.ChatMessage;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Chat templates rendered with Jinjava the way Hugging Face renders them, and the plain fallback. */
class ChatTemplateTest {
    /** Shaped like Llama 3's template: BOS, headers per message, a rule enforced with raise_exception. */
    static final String LLAMA3_LIKE = """
            {{- bos_token }}
            {%- for message in messages %}
                {%- if message['role'] == 'system' and not loop.first %}
                    {{- raise_exception('System message must be the first message') }}
                {%- endif %}
                {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
            {%- endfor %}
            {%- if add_generation_prompt %}
                {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
            {%- endif %}
            """;

    static final List<ChatMessage> CONVERSATION = List.of(new ChatMessage("system", "Be brief."), new ChatMessage("user", "  Hello there \n"));

    @Test
    void aJinjaTemplateRendersMessagesBosAndTheGenerationPrompt() {
        ChatTemplate t = ChatTemplate.jinja(LLAMA3_LIKE, Optional.of("<|begin_of_text|>"), Optional.of("<|end_of_text|>"));
        assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                        + "<|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
                t.render(CONVERSATION));
    }

    @Test
    void commonPublishedTemplatesRenderAsTransformersDoes() {
        // Llama 3 Instruct's template (filter binds tighter than +; bos_token added via a set variable).
        String llama3 = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role']"
                + " + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
                + "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
        assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                + "Hello there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
                ChatTemplate.jinja(llama3, Optional.of("<|begin_of_text|>"), Optional.empty()).render(CONVERSATION));
        // ChatML (Qwen, many fine-tunes).
        String chatml = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
                + "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
                ChatTemplate.jinja(chatml, Optional.empty(), Optional.empty()).render(List.of(new ChatMessage("user", "Hi"))));
        // Mistral Instruct: alternating roles enforced with raise_exception.
        String mistral = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
                + "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
                + "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
                + "{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";
        ChatTemplate m = ChatTemplate.jinja(mistral, Optional.of("<s>"), Optional.of("</s>"));
        assertEquals("<s>[INST] Hi [/INST]Hello</s>[INST] More [/INST]", m.render(List.of(new ChatMessage("user", "Hi"),
                new ChatMessage("assistant", "Hello"), new ChatMessage("user", "More"))));
        ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> m.render(CONVERSATION));
        assertTrue(e.getMessage().contains("Conversation roles must alternate"), e.getMessage());
    }

    @Test
    void trimBlocksAndLstripBlocksAreOnAsInHuggingFace() {
        String source = "{% for m in messages %}\n    {% if m.role == 'user' %}\nU:{{ m.content }}\n    {% endif %}\n{% endfor %}\nA:";
        ChatTemplate t = ChatTemplate.jinja(source, Optional.empty(), Optional.empty());
        assertEquals("U:hi\nA:", t.render(List.of(new ChatMessage("user", "hi"))));
    }

    @Test
    void raiseExceptionBecomesAnErrorWithTheTemplatesMessage() {
        ChatTemplate t = ChatTemplate.jinja(LLAMA3_LIKE, Optional.of("<|begin_of_text|>"), Optional.empty());
        ChatTemplateException e = assertThrows(ChatTemplateException.class,
                () -> t.render(List.of(new ChatMessage("user", "Hi"), new ChatMessage("system", "late"))));
        assertTrue(e.getMessage().contains("System message must be the first message"), e.getMessage());
    }

    @Test
    void aBrokenTemplateIsAnErrorNamingTheProblem() {
        ChatTemplate t = ChatTemplate.jinja("{% for m in messages %}{{ m.content }}", Optional.empty(), Optional.empty());
        ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> t.render(CONVERSATION));
        assertTrue(e.getMessage().startsWith("chat template: "), e.getMessage());
        assertTrue(e.getMessage().toLowerCase().contains("for") || e.getMessage().toLowerCase().contains("endfor"), e.getMessage());
    }

    @Test
    void withoutATemplateThePlainFormatIsUsed() {
        assertEquals("system: Be brief.\nuser:   Hello there \n\nassistant: ", ChatTemplate.PLAIN.render(CONVERSATION));
    }

    @Test
    void aTemplateThatWritesBosDoesNotGetASecondOne() {
        Path dir = Path.of(System.getProperty("tandem.shared", "../../shared"), "models", "gutenberg-stories-llama-25m");
        try (Model model = ModelLoader.load(dir, null)) {
            ChatTemplate withBos = ChatTemplate.jinja("{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}",
                    Optional.of("<|begin_of_text|>"), Optional.empty());
            ChatTemplate withoutBos = ChatTemplate.jinja("{% for m in messages %}{{ m.content }}{% endfor %}",
                    Optional.of("<|begin_of_text|>"), Optional.empty());
            List<ChatMessage> once = List.of(new ChatMessage("user", "Once upon a time"));
            int[] expected = model.tokenizer().encode("Once upon a time", true);
            assertEquals(0, expected[0]);
            assertArrayEquals(expected, new PromptEncoder(model.tokenizer(), withBos).chat(once));
            assertArrayEquals(expected, new PromptEncoder(model.tokenizer(), withoutBos).chat(once));
        }
    }
}
