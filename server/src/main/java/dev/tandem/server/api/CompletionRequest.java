package dev.tandem.server.api;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tandem.core.sampling.SamplingParams;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * A validated /v1/completions or /v1/chat/completions request. {@link #parse} maps the JSON body, checks every
 * field's type and range, and names the field in its error; unknown fields are ignored as OpenAI does.
 *
 * @param model        the model asked for; empty means the served one
 * @param prompt       completions: the prompt (null for chat)
 * @param messages     chat: the conversation (empty for completions)
 * @param maxTokens    most tokens to generate; empty means "up to the context"
 * @param topK         0 = off (the API's -1 is mapped to 0)
 * @param seed         empty means a random seed
 * @param stop         strings that end the output (not included in it)
 * @param logprobs     -1: none; 0: the chosen tokens' logprobs; n: also the n most likely alternatives
 * @param includeUsage stream_options.include_usage: a last chunk with usage and no choices
 * @param ignoreEos    extension: keep generating past EOS
 * @param speculative  extension: false turns speculative decoding off for this request (when the server has it on)
 */
public record CompletionRequest(Endpoint endpoint, Optional<String> model, Prompt prompt, List<ChatMessage> messages,
                                OptionalInt maxTokens, float temperature, int topK, float topP, float minP,
                                float repetitionPenalty, float presencePenalty, float frequencyPenalty, OptionalLong seed,
                                List<String> stop, int logprobs, boolean stream, boolean includeUsage, boolean ignoreEos,
                                boolean speculative) {

    /** The two generation endpoints; they differ in prompt, logprobs and response shape. */
    public enum Endpoint { COMPLETIONS, CHAT }

    /** Most alternatives per token the engine reports. */
    public static final int MAX_TOP_LOGPROBS = 20;

    public CompletionRequest {
        messages = List.copyOf(messages);
        stop = List.copyOf(stop);
    }

    /** The sampler's settings; {@code randomSeed} is used when the request gave none. */
    public SamplingParams sampling(long randomSeed) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, 64, presencePenalty, frequencyPenalty,
                seed.orElse(randomSeed));
    }

    public static CompletionRequest parse(Endpoint endpoint, JsonNode body) {
        if (body == null || !body.isObject()) {
            throw new InvalidRequestException(null, "the request body must be a JSON object, got " + (body == null ? "nothing" : JsonFields.describe(body)));
        }
        JsonFields f = new JsonFields(body);
        Optional<String> model = f.string("model");

        Prompt prompt = null;
        List<ChatMessage> messages = List.of();
        OptionalInt maxTokens;
        int logprobs = -1;
        if (endpoint == Endpoint.COMPLETIONS) {
            prompt = prompt(f);
            maxTokens = f.integer("max_tokens");
            OptionalInt lp = f.integer("logprobs");
            if (lp.isPresent()) {
                logprobs = lp.getAsInt();
                if (logprobs < 0 || logprobs > MAX_TOP_LOGPROBS) {
                    throw new InvalidRequestException("logprobs", "'logprobs' must be between 0 and " + MAX_TOP_LOGPROBS + ", got " + logprobs);
                }
            }
            if (f.bool("echo").orElse(false)) throw new InvalidRequestException("echo", "'echo' is not supported; leave it false");
            OptionalInt bestOf = f.integer("best_of");
            if (bestOf.isPresent() && bestOf.getAsInt() != 1) {
                throw new InvalidRequestException("best_of", "'best_of' must be 1, got " + bestOf.getAsInt());
            }
            if (f.has("suffix")) throw new InvalidRequestException("suffix", "'suffix' is not supported");
        } else {
            messages = messages(f);
            maxTokens = f.integer("max_completion_tokens");
            if (maxTokens.isEmpty()) maxTokens = f.integer("max_tokens");
            boolean wantLogprobs = f.bool("logprobs").orElse(false);
            OptionalInt top = f.integer("top_logprobs");
            if (top.isPresent()) {
                if (!wantLogprobs) throw new InvalidRequestException("top_logprobs", "'top_logprobs' needs 'logprobs' set to true");
                if (top.getAsInt() < 0 || top.getAsInt() > MAX_TOP_LOGPROBS) {
                    throw new InvalidRequestException("top_logprobs", "'top_logprobs' must be between 0 and " + MAX_TOP_LOGPROBS + ", got " + top.getAsInt());
                }
            }
            if (wantLogprobs) logprobs = top.orElse(0);
        }
        if (maxTokens.isPresent() && maxTokens.getAsInt() < 1) {
            String name = endpoint == Endpoint.CHAT && f.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
            throw new InvalidRequestException(name, "'" + name + "' must be at least 1, got " + maxTokens.getAsInt());
        }

        OptionalInt n = f.integer("n");
        if (n.isPresent() && n.getAsInt() != 1) throw new InvalidRequestException("n", "'n' must be 1 (one choice per request), got " + n.getAsInt());

        float temperature = (float) f.number("temperature").orElse(1.0);
        if (!(temperature >= 0) || Float.isInfinite(temperature)) {
            throw new InvalidRequestException("temperature", "'temperature' must be >= 0, got " + temperature);
        }
        float topP = (float) f.number("top_p").orElse(1.0);
        if (!(topP > 0 && topP <= 1)) throw new InvalidRequestException("top_p", "'top_p' must be in (0, 1], got " + topP);
        int topK = f.integer("top_k").orElse(-1);
        if (topK < -1) throw new InvalidRequestException("top_k", "'top_k' must be -1 or 0 (off) or a positive count, got " + topK);
        float minP = (float) f.number("min_p").orElse(0.0);
        if (!(minP >= 0 && minP <= 1)) throw new InvalidRequestException("min_p", "'min_p' must be in [0, 1], got " + minP);
        float repetition = (float) f.number("repetition_penalty").orElse(1.0);
        if (!(repetition > 0) || Float.isInfinite(repetition)) {
            throw new InvalidRequestException("repetition_penalty", "'repetition_penalty' must be > 0, got " + repetition);
        }
        float presence = penalty(f, "presence_penalty");
        float frequency = penalty(f, "frequency_penalty");
        OptionalLong seed = f.longValue("seed");

        boolean stream = f.bool("stream").orElse(false);
        boolean includeUsage = false;
        JsonNode options = f.node("stream_options");
        if (options != null) {
            if (!options.isObject()) throw JsonFields.wrongType("stream_options", "an object", options);
            JsonNode iu = options.get("include_usage");
            if (iu != null && !iu.isNull()) {
                if (!iu.isBoolean()) throw JsonFields.wrongType("stream_options.include_usage", "a boolean", iu);
                includeUsage = iu.booleanValue();
            }
        }
        boolean ignoreEos = f.bool("ignore_eos").orElse(false);
        boolean speculative = f.bool("speculative").orElse(true);
        return new CompletionRequest(endpoint, model, prompt, messages, maxTokens, temperature, topK < 0 ? 0 : topK, topP, minP,
                repetition, presence, frequency, seed, stop(f), logprobs, stream, includeUsage, ignoreEos, speculative);
    }

    private static float penalty(JsonFields f, String name) {
        float v = (float) f.number(name).orElse(0.0);
        if (!(v >= -2 && v <= 2)) throw new InvalidRequestException(name, "'" + name + "' must be in [-2, 2], got " + v);
        return v;
    }

    /** A string, a list of one string, a list of token ids, or a list of one list of token ids. */
    private static Prompt prompt(JsonFields f) {
        JsonNode p = f.node("prompt");
        if (p == null) throw new InvalidRequestException("prompt", "'prompt' is required");
        if (p.isTextual()) return new Prompt.Text(p.textValue());
        if (!p.isArray()) throw JsonFields.wrongType("prompt", "a string, a list of one string or a list of token ids", p);
        if (p.isEmpty()) throw new InvalidRequestException("prompt", "'prompt' is an empty list");
        if (p.size() == 1 && p.get(0).isTextual()) return new Prompt.Text(p.get(0).textValue());
        if (p.size() == 1 && p.get(0).isArray()) return new Prompt.Tokens(tokenIds(p.get(0)));
        if (p.get(0).isTextual() || p.get(0).isArray()) {
            throw new InvalidRequestException("prompt", "'prompt' holds " + p.size() + " prompts; this server takes one per request");
        }
        return new Prompt.Tokens(tokenIds(p));
    }

    private static int[] tokenIds(JsonNode list) {
        if (list.isEmpty()) throw new InvalidRequestException("prompt", "'prompt' is an empty list of token ids");
        int[] ids = new int[list.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode t = list.get(i);
            if (!t.isIntegralNumber() || !t.canConvertToInt()) {
                throw new InvalidRequestException("prompt", "'prompt' must be a string or a list of token ids; element " + i + " is " + JsonFields.describe(t));
            }
            ids[i] = t.intValue();
        }
        return ids;
    }

    private static List<ChatMessage> messages(JsonFields f) {
        JsonNode list = f.node("messages");
        if (list == null) throw new InvalidRequestException("messages", "'messages' is required");
        if (!list.isArray()) throw JsonFields.wrongType("messages", "a list of messages", list);
        if (list.isEmpty()) throw new InvalidRequestException("messages", "'messages' is empty");
        List<ChatMessage> out = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            JsonNode m = list.get(i);
            String where = "messages[" + i + "]";
            if (!m.isObject()) throw JsonFields.wrongType(where, "an object with 'role' and 'content'", m);
            JsonNode role = m.get("role");
            if (role == null || !role.isTextual()) {
                throw new InvalidRequestException(where + ".role", "'" + where + ".role' must be a string" + (role == null ? " and is missing" : ""));
            }
            out.add(new ChatMessage(role.textValue(), content(where + ".content", m.get("content"))));
        }
        return out;
    }

    /** A string, null (e.g. an assistant turn with tool calls) or a list of parts of which only "text" ones are taken. */
    private static String content(String where, JsonNode c) {
        if (c == null || c.isNull()) return "";
        if (c.isTextual()) return c.textValue();
        if (!c.isArray()) throw JsonFields.wrongType(where, "a string or a list of content parts", c);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < c.size(); i++) {
            JsonNode part = c.get(i);
            String type = part.path("type").asText("");
            if (!type.equals("text") || !part.path("text").isTextual()) {
                throw new InvalidRequestException(where, "'" + where + "[" + i + "]' is a content part of type '" + type
                        + "'; only {\"type\": \"text\", \"text\": ...} parts are supported");
            }
            sb.append(part.get("text").textValue());
        }
        return sb.toString();
    }

    /** A string or a list of strings; empty strings are dropped. */
    private static List<String> stop(JsonFields f) {
        JsonNode s = f.node("stop");
        if (s == null) return List.of();
        List<String> out = new ArrayList<>();
        if (s.isTextual()) {
            if (!s.textValue().isEmpty()) out.add(s.textValue());
            return out;
        }
        if (!s.isArray()) throw JsonFields.wrongType("stop", "a string or a list of strings", s);
        for (JsonNode e : s) {
            if (!e.isTextual()) throw new InvalidRequestException("stop", "'stop' must hold strings only, got " + JsonFields.describe(e));
            if (!e.textValue().isEmpty()) out.add(e.textValue());
        }
        return out;
    }
}
