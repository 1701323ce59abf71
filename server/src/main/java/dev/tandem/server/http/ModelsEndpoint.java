package dev.tandem.server.http;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.helidon.http.HeaderNames;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;

/** GET /v1/models and /v1/models/{id}: the one served model. */
final class ModelsEndpoint {
    private final String name;
    private final int contextLength;
    private final long created = System.currentTimeMillis() / 1000;

    ModelsEndpoint(String name, int contextLength) {
        this.name = name;
        this.contextLength = contextLength;
    }

    void list(ServerRequest req, ServerResponse res) {
        ObjectNode root = JsonNodeFactory.instance.objectNode();
        root.put("object", "list");
        root.putArray("data").add(model());
        send(res, root);
    }

    void one(ServerRequest req, ServerResponse res) {
        String id = req.path().pathParameters().get("id");
        if (!id.equals(name)) throw ApiError.notFound("The model '" + id + "' does not exist; this server serves '" + name + "'", "model_not_found");
        send(res, model());
    }

    private ObjectNode model() {
        ObjectNode m = JsonNodeFactory.instance.objectNode();
        m.put("id", name);
        m.put("object", "model");
        m.put("created", created);
        m.put("owned_by", "tandem");
        m.put("max_model_len", contextLength);
        return m;
    }

    private static void send(ServerResponse res, ObjectNode body) {
        res.header(HeaderNames.CONTENT_TYPE, "application/json");
        res.send(Json.bytes(body));
    }
}
