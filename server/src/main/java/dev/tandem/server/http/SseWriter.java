package dev.tandem.server.http;

import com.fasterxml.jackson.databind.JsonNode;
import io.helidon.http.HeaderNames;
import io.helidon.webserver.http.ServerResponse;

import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Server-sent events for streamed responses: each chunk is written and flushed as {@code data: {json}\n\n}, and
 * the stream ends with {@code data: [DONE]}. A write that fails means the client has gone: {@link ClientGoneException}.
 */
final class SseWriter implements AutoCloseable {
    /** The client closed the connection; the request should be cancelled. */
    static final class ClientGoneException extends Exception {
        ClientGoneException(Throwable cause) { super("the client closed the connection", cause); }
    }

    private static final byte[] DATA = "data: ".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] END = "\n\n".getBytes(StandardCharsets.US_ASCII);
    private final OutputStream out;

    SseWriter(ServerResponse res) {
        res.header(HeaderNames.CONTENT_TYPE, "text/event-stream; charset=utf-8");
        res.header(HeaderNames.CACHE_CONTROL, "no-cache");
        res.header(HeaderNames.create("X-Accel-Buffering"), "no");
        this.out = res.outputStream();
    }

    void event(JsonNode data) throws ClientGoneException { write(Json.bytes(data)); }

    void done() throws ClientGoneException { write("[DONE]".getBytes(StandardCharsets.US_ASCII)); }

    /** An SSE comment: keeps idle connections alive and finds out whether the client is still there. */
    void comment(String text) throws ClientGoneException {
        try {
            out.write((": " + text + "\n\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
        } catch (Exception e) {
            throw new ClientGoneException(e);
        }
    }

    /** Sends the response headers now, before the first event. */
    void open() throws ClientGoneException {
        try {
            out.flush();
        } catch (Exception e) {
            throw new ClientGoneException(e);
        }
    }

    private void write(byte[] payload) throws ClientGoneException {
        try {
            out.write(DATA);
            out.write(payload);
            out.write(END);
            out.flush();
        } catch (Exception e) { // Helidon reports a closed socket as UncheckedIOException or its own runtime exceptions
            throw new ClientGoneException(e);
        }
    }

    @Override
    public void close() {
        try {
            out.close();
        } catch (Exception ignored) {
            // the client has gone; nothing to finish
        }
    }
}
