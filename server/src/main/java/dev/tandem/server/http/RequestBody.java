package dev.tandem.server.http;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.databind.JsonNode;
import io.helidon.webserver.http.ServerRequest;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.OptionalLong;

/**
 * Reads a request's JSON body under a size limit: over it is 413 (checked from Content-Length before reading, and
 * while reading for chunked bodies); malformed JSON is 400 with where the parser stopped.
 */
final class RequestBody {
    private RequestBody() {}

    static JsonNode readJson(ServerRequest req, long limit) {
        OptionalLong declared = req.headers().contentLength();
        if (declared.isPresent() && declared.getAsLong() > limit) throw tooLarge(declared.getAsLong(), limit);
        byte[] body;
        try (InputStream in = req.content().inputStream()) {
            body = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, limit + 1));
        } catch (IOException e) {
            throw new UncheckedIOException("reading the request body: " + e.getMessage(), e);
        }
        if (body.length > limit) throw tooLarge(-1, limit);
        if (body.length == 0) throw ApiError.badRequest(null, "the request body is empty; send a JSON object");
        try {
            return Json.MAPPER.readTree(body);
        } catch (JacksonException e) {
            JsonLocation at = e.getLocation();
            String where = at != null ? " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")" : "";
            throw ApiError.badRequest(null, "the request body is not valid JSON: " + e.getOriginalMessage() + where);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static ApiError tooLarge(long size, long limit) {
        return new ApiError(413, "invalid_request_error", "the request body " + (size >= 0 ? "is " + size + " bytes, " : "is ")
                + "over the limit of " + limit + " bytes", null, "request_too_large");
    }
}
