package dev.tandem.server.http;

import dev.tandem.engine.QueueFullException;
import dev.tandem.server.api.InvalidRequestException;
import dev.tandem.server.chat.ChatTemplateException;
import dev.tandem.server.generation.GenerationFailedException;
import io.helidon.http.HeaderNames;
import io.helidon.http.Status;
import io.helidon.webserver.http.ServerResponse;

import java.lang.System.Logger.Level;

/** Maps what went wrong to the API's status codes and error bodies, and writes them. */
public final class ErrorMapper {
    private static final System.Logger LOG = System.getLogger(ErrorMapper.class.getName());

    private ErrorMapper() {}

    public static ApiError map(Throwable t) {
        return switch (t) {
            case ApiError e -> e;
            case InvalidRequestException e -> ApiError.badRequest(e.param(), e.getMessage());
            case ChatTemplateException e -> ApiError.badRequest("messages", e.getMessage());
            case QueueFullException e -> new ApiError(429, "rate_limit_error", e.getMessage(), null, "rate_limit_exceeded");
            // Engine.submit: the request can never fit (context, KV cache, token ids outside the vocabulary).
            case IllegalArgumentException e -> ApiError.badRequest(null, e.getMessage());
            // Engine.submit after shutdown began.
            case IllegalStateException e when e.getMessage() != null && e.getMessage().contains("shutting down") ->
                    new ApiError(503, "service_unavailable_error", "the server is shutting down", null, null);
            case GenerationFailedException e -> internal(e);
            default -> internal(t);
        };
    }

    private static ApiError internal(Throwable t) {
        LOG.log(Level.ERROR, "request failed", t);
        return new ApiError(500, "internal_error", t.getMessage() != null ? t.getMessage() : t.toString(), null, null);
    }

    /** Writes the error unless the response has already started (then there is nothing left to do). */
    public static void send(ServerResponse res, ApiError error) {
        if (res.isSent()) return;
        try {
            res.status(Status.create(error.status()));
            res.header(HeaderNames.CONTENT_TYPE, "application/json");
            res.send(Json.bytes(error.body()));
        } catch (IllegalStateException | java.io.UncheckedIOException e) {
            // a streamed response had already begun, or the client has gone: nothing more can be said
        }
    }
}
