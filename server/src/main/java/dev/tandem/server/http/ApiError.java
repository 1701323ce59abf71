package dev.tandem.server.http;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * An error the API answers with: HTTP status and OpenAI's body {"error": {"message", "type", "param", "code"}}.
 * Thrown anywhere below a handler and written by {@link ErrorMapper}.
 */
public final class ApiError extends RuntimeException {
    private final int status;
    private final String type;
    private final String param;
    private final String code;

    public ApiError(int status, String type, String message, String param, String code) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    public static ApiError badRequest(String param, String message) { return new ApiError(400, "invalid_request_error", message, param, null); }

    public static ApiError notFound(String message, String code) { return new ApiError(404, "not_found_error", message, null, code); }

    public int status() { return status; }

    public ObjectNode body() {
        ObjectNode root = JsonNodeFactory.instance.objectNode();
        ObjectNode e = root.putObject("error");
        e.put("message", getMessage());
        e.put("type", type);
        if (param == null) e.putNull("param");
        else e.put("param", param);
        if (code == null) e.putNull("code");
        else e.put("code", code);
        return root;
    }
}
