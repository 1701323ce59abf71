package dev.tandem.server.api;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tandem.server.generation.OutputAssembler;
import dev.tandem.server.generation.TokenLogprob;
import dev.tandem.server.generation.Usage;

import java.util.List;
import java.util.Optional;

/** The JSON shapes of one endpoint's responses and stream chunks, as OpenAI writes them. */
public sealed interface ResponseFormat permits CompletionFormat, ChatFormat {
    JsonNodeFactory JSON = JsonNodeFactory.instance;

    /** What every response and chunk of one request repeats. */
    record Header(String id, long created, String model, boolean logprobs) {}

    static ResponseFormat of(CompletionRequest.Endpoint endpoint) {
        return endpoint == CompletionRequest.Endpoint.CHAT ? new ChatFormat() : new CompletionFormat();
    }

    /** "cmpl-" or "chatcmpl-". */
    String idPrefix();

    /** The whole (non-streamed) response. */
    ObjectNode response(Header header, String text, List<TokenLogprob> logprobs, String finishReason, Usage usage);

    /** A chunk to send before any text, if the endpoint has one (chat: the assistant's role). */
    Optional<ObjectNode> openingChunk(Header header);

    /** A stream chunk; {@code finishReason} is null until the last one. */
    ObjectNode chunk(Header header, OutputAssembler.Delta delta, String finishReason);

    /** stream_options.include_usage: the last chunk, with usage and no choices. */
    default ObjectNode usageChunk(Header header, Usage usage) {
        ObjectNode chunk = base(header, chunkObject());
        chunk.putArray("choices");
        chunk.set("usage", usage(usage));
        return chunk;
    }

    /** The "object" value of stream chunks. */
    String chunkObject();

    default ObjectNode base(Header header, String object) {
        ObjectNode o = JSON.objectNode();
        o.put("id", header.id());
        o.put("object", object);
        o.put("created", header.created());
        o.put("model", header.model());
        return o;
    }

    static ObjectNode usage(Usage usage) {
        ObjectNode u = JSON.objectNode();
        u.put("prompt_tokens", usage.promptTokens());
        u.put("completion_tokens", usage.completionTokens());
        u.put("total_tokens", usage.totalTokens());
        u.putObject("prompt_tokens_details").put("cached_tokens", usage.cachedTokens());
        return u;
    }
}
