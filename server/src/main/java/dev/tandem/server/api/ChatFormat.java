package dev.tandem.server.api;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tandem.server.generation.OutputAssembler;
import dev.tandem.server.generation.TokenLogprob;
import dev.tandem.server.generation.Usage;

import java.util.List;
import java.util.Optional;

/** /v1/chat/completions: choices carry "message" (or "delta" in chunks); logprobs.content lists one object per token. */
public final class ChatFormat implements ResponseFormat {
    @Override public String idPrefix() { return "chatcmpl-"; }

    @Override public String chunkObject() { return "chat.completion.chunk"; }

    @Override
    public ObjectNode response(Header header, String text, List<TokenLogprob> logprobs, String finishReason, Usage usage) {
        ObjectNode o = base(header, "chat.completion");
        ObjectNode choice = o.putArray("choices").addObject();
        choice.put("index", 0);
        ObjectNode message = choice.putObject("message");
        message.put("role", "assistant");
        message.put("content", text);
        message.putNull("refusal");
        logprobs(choice, header, logprobs);
        choice.put("finish_reason", finishReason);
        o.set("usage", ResponseFormat.usage(usage));
        return o;
    }

    @Override
    public Optional<ObjectNode> openingChunk(Header header) {
        ObjectNode o = base(header, chunkObject());
        ObjectNode choice = o.putArray("choices").addObject();
        choice.put("index", 0);
        choice.putObject("delta").put("role", "assistant").put("content", "");
        choice.putNull("logprobs");
        choice.putNull("finish_reason");
        return Optional.of(o);
    }

    @Override
    public ObjectNode chunk(Header header, OutputAssembler.Delta delta, String finishReason) {
        ObjectNode o = base(header, chunkObject());
        ObjectNode choice = o.putArray("choices").addObject();
        choice.put("index", 0);
        ObjectNode d = choice.putObject("delta");
        if (!delta.text().isEmpty() || finishReason == null) d.put("content", delta.text());
        logprobs(choice, header, delta.logprobs());
        if (finishReason == null) choice.putNull("finish_reason");
        else choice.put("finish_reason", finishReason);
        return o;
    }

    private static void logprobs(ObjectNode choice, Header header, List<TokenLogprob> list) {
        if (!header.logprobs()) {
            choice.putNull("logprobs");
            return;
        }
        ObjectNode lp = choice.putObject("logprobs");
        ArrayNode content = lp.putArray("content");
        for (TokenLogprob t : list) {
            ObjectNode e = content.addObject();
            e.put("token", t.token());
            e.put("logprob", t.logprob());
            bytes(e, t.bytes());
            ArrayNode top = e.putArray("top_logprobs");
            for (TokenLogprob.Alternative a : t.top()) {
                ObjectNode alt = top.addObject();
                alt.put("token", a.token());
                alt.put("logprob", a.logprob());
                bytes(alt, a.bytes());
            }
        }
        lp.putNull("refusal");
    }

    private static void bytes(ObjectNode o, byte[] bytes) {
        ArrayNode b = o.putArray("bytes");
        for (byte x : bytes) b.add(x & 0xff);
    }
}
