package dev.tandem.server.api;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tandem.server.generation.OutputAssembler;
import dev.tandem.server.generation.TokenLogprob;
import dev.tandem.server.generation.Usage;

import java.util.List;
import java.util.Optional;

/** /v1/completions: choices carry "text"; logprobs are parallel lists (tokens, token_logprobs, top_logprobs, text_offset). */
public final class CompletionFormat implements ResponseFormat {
    @Override public String idPrefix() { return "cmpl-"; }

    @Override public String chunkObject() { return "text_completion"; }

    @Override
    public ObjectNode response(Header header, String text, List<TokenLogprob> logprobs, String finishReason, Usage usage) {
        ObjectNode o = base(header, "text_completion");
        o.putArray("choices").add(choice(header, text, logprobs, finishReason));
        o.set("usage", ResponseFormat.usage(usage));
        return o;
    }

    @Override
    public Optional<ObjectNode> openingChunk(Header header) { return Optional.empty(); }

    @Override
    public ObjectNode chunk(Header header, OutputAssembler.Delta delta, String finishReason) {
        ObjectNode o = base(header, "text_completion");
        o.putArray("choices").add(choice(header, delta.text(), delta.logprobs(), finishReason));
        return o;
    }

    private static ObjectNode choice(Header header, String text, List<TokenLogprob> logprobs, String finishReason) {
        ObjectNode c = JSON.objectNode();
        c.put("index", 0);
        c.put("text", text);
        if (header.logprobs()) c.set("logprobs", logprobs(logprobs));
        else c.putNull("logprobs");
        if (finishReason == null) c.putNull("finish_reason");
        else c.put("finish_reason", finishReason);
        return c;
    }

    private static ObjectNode logprobs(List<TokenLogprob> list) {
        ObjectNode lp = JSON.objectNode();
        ArrayNode tokens = lp.putArray("tokens"), values = lp.putArray("token_logprobs"), top = lp.putArray("top_logprobs"),
                offsets = lp.putArray("text_offset");
        for (TokenLogprob t : list) {
            tokens.add(t.token());
            values.add(t.logprob());
            ObjectNode alternatives = top.addObject();
            for (TokenLogprob.Alternative a : t.top()) if (!alternatives.has(a.token())) alternatives.put(a.token(), a.logprob());
            offsets.add(t.textOffset());
        }
        return lp;
    }
}
