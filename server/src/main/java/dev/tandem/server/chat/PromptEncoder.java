package dev.tandem.server.chat;

import dev.tandem.core.tokenizer.ByteLevelBpeTokenizer;
import dev.tandem.core.tokenizer.Tokenizer;
import dev.tandem.server.api.ChatMessage;
import dev.tandem.server.api.InvalidRequestException;
import dev.tandem.server.api.Prompt;

import java.util.List;

/** Prompt token ids for both endpoints: completions' text or ids, and chat conversations through the chat template. */
public final class PromptEncoder {
    private final Tokenizer tokenizer;
    private final ChatTemplate template;

    public PromptEncoder(Tokenizer tokenizer, ChatTemplate template) {
        this.tokenizer = tokenizer;
        this.template = template;
    }

    /** The model's own template when its tokenizer_config.json has one, else {@link ChatTemplate#PLAIN}. */
    public static ChatTemplate templateOf(Tokenizer tokenizer) {
        if (tokenizer instanceof ByteLevelBpeTokenizer bpe && bpe.chatTemplate().isPresent()) {
            return ChatTemplate.jinja(bpe.chatTemplate().get(), bpe.bosToken(), bpe.eosToken());
        }
        return ChatTemplate.PLAIN;
    }

    public ChatTemplate template() { return template; }

    public int[] completion(Prompt prompt) {
        return switch (prompt) {
            case Prompt.Tokens t -> t.ids();
            case Prompt.Text t -> nonEmpty(tokenizer.encode(t.text(), true), "prompt");
        };
    }

    /**
     * The conversation rendered and encoded. Templates usually write the BOS text themselves; then the tokenizer must
     * not add a second one.
     */
    public int[] chat(List<ChatMessage> messages) {
        String text = template.render(messages);
        boolean hasBos = !template.bosToken().isEmpty() && text.startsWith(template.bosToken());
        return nonEmpty(tokenizer.encode(text, !hasBos), "messages");
    }

    private static int[] nonEmpty(int[] ids, String param) {
        if (ids.length == 0) throw new InvalidRequestException(param, "'" + param + "' encodes to no tokens and the model has no BOS token to start from");
        return ids;
    }
}
