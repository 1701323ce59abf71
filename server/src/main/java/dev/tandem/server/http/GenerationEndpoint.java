package dev.tandem.server.http;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.server.api.CompletionRequest;
import dev.tandem.server.api.ResponseFormat;
import dev.tandem.server.chat.PromptEncoder;
import dev.tandem.server.generation.GenerationFailedException;
import dev.tandem.server.generation.GenerationRun;
import dev.tandem.server.generation.Generator;
import dev.tandem.server.generation.TokenLogprob;
import io.helidon.http.HeaderNames;
import io.helidon.webserver.http.Handler;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;

import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * POST /v1/completions and /v1/chat/completions. Runs on the request's own virtual thread: parse and validate,
 * encode the prompt, submit, then either collect the whole output or stream it as server-sent events, draining
 * the request's token queue and flushing each chunk. A failed write cancels the request at once.
 */
final class GenerationEndpoint implements Handler {
    /** Idle time after which a stream sends a comment, so that a vanished client is noticed even while queued. */
    private static final long KEEPALIVE_SECONDS = 10;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final CompletionRequest.Endpoint endpoint;
    private final ResponseFormat format;
    private final Generator generator;
    private final PromptEncoder prompts;
    private final ServerConfig config;

    GenerationEndpoint(CompletionRequest.Endpoint endpoint, Generator generator, PromptEncoder prompts, ServerConfig config) {
        this.endpoint = endpoint;
        this.format = ResponseFormat.of(endpoint);
        this.generator = generator;
        this.prompts = prompts;
        this.config = config;
    }

    @Override
    public void handle(ServerRequest req, ServerResponse res) throws InterruptedException {
        long arrival = System.nanoTime();
        CompletionRequest request = CompletionRequest.parse(endpoint, RequestBody.readJson(req, config.maxBodyBytes()));
        request.model().filter(m -> !m.equals(config.servedModelName())).ifPresent(m -> {
            throw ApiError.notFound("The model '" + m + "' does not exist; this server serves '" + config.servedModelName() + "'", "model_not_found");
        });
        int[] prompt = endpoint == CompletionRequest.Endpoint.CHAT ? prompts.chat(request.messages()) : prompts.completion(request.prompt());
        int maxTokens = maxTokens(request, prompt.length);
        GenerationRequest generation = new GenerationRequest(prompt, maxTokens, request.sampling(RANDOM.nextLong()), request.ignoreEos(),
                request.logprobs(), request.speculative());
        ResponseFormat.Header header = new ResponseFormat.Header(format.idPrefix() + newId(),
                System.currentTimeMillis() / 1000, config.servedModelName(), request.logprobs() >= 0);
        try (GenerationRun run = generator.start(generation, request.stop(), arrival)) {
            if (request.stream()) stream(res, run, header, request.includeUsage());
            else respond(res, run, header);
        }
    }

    private static String newId() {
        byte[] b = new byte[12];
        RANDOM.nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    /** max_tokens checked against the context; absent, it is whatever the context leaves after the prompt. */
    private int maxTokens(CompletionRequest request, int promptTokens) {
        int context = generator.engine().contextLength();
        String promptParam = endpoint == CompletionRequest.Endpoint.CHAT ? "messages" : "prompt";
        if (promptTokens >= context) {
            throw ApiError.badRequest(promptParam, "the prompt is " + promptTokens + " tokens, which leaves no room to generate in the model's context of "
                    + context + " tokens");
        }
        if (request.maxTokens().isEmpty()) return context - promptTokens;
        int max = request.maxTokens().getAsInt();
        if ((long) promptTokens + max > context) {
            throw new ApiError(400, "invalid_request_error", "the prompt (" + promptTokens + " tokens) plus max_tokens (" + max + ") is "
                    + ((long) promptTokens + max) + " tokens, over the model's context of " + context + " tokens; lower max_tokens or shorten the prompt",
                    "max_tokens", "context_length_exceeded");
        }
        return max;
    }

    private void respond(ServerResponse res, GenerationRun run, ResponseFormat.Header header) throws InterruptedException {
        StringBuilder text = new StringBuilder();
        List<TokenLogprob> logprobs = new ArrayList<>();
        while (true) {
            GenerationRun.Step step = run.next(1, TimeUnit.MINUTES);
            if (step == null) continue;
            text.append(step.delta().text());
            logprobs.addAll(step.delta().logprobs());
            if (step.last()) {
                ObjectNode body = format.response(header, text.toString(), logprobs, step.finishReason(), step.usage());
                res.header(HeaderNames.CONTENT_TYPE, "application/json");
                res.send(Json.bytes(body));
                return;
            }
        }
    }

    private void stream(ServerResponse res, GenerationRun run, ResponseFormat.Header header, boolean includeUsage) throws InterruptedException {
        try (SseWriter sse = new SseWriter(res)) {
            try {
                var opening = format.openingChunk(header);
                if (opening.isPresent()) sse.event(withUsage(opening.get(), includeUsage));
                else sse.open();
                while (true) {
                    GenerationRun.Step step;
                    try {
                        step = run.next(KEEPALIVE_SECONDS, TimeUnit.SECONDS);
                    } catch (GenerationFailedException e) {
                        sse.event(ErrorMapper.map(e).body());
                        sse.done();
                        return;
                    }
                    if (step == null) {
                        sse.comment("waiting");
                        continue;
                    }
                    sse.event(withUsage(format.chunk(header, step.delta(), step.finishReason()), includeUsage));
                    if (step.last()) {
                        if (includeUsage) sse.event(format.usageChunk(header, step.usage()));
                        sse.done();
                        return;
                    }
                }
            } catch (SseWriter.ClientGoneException e) {
                run.cancel(); // at once; closing the run would too, this just does not wait for the writer's cleanup
            }
        }
    }

    /** With include_usage, OpenAI puts "usage": null on every chunk but the last. */
    private static ObjectNode withUsage(ObjectNode chunk, boolean includeUsage) {
        if (includeUsage) chunk.putNull("usage");
        return chunk;
    }
}
