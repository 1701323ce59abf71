package dev.tandem.server.api;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * Typed reads of a request's fields. A missing field and an explicit JSON null both mean "not given"; a value of
 * the wrong type is an {@link InvalidRequestException} that names the field and says what was expected.
 */
final class JsonFields {
    private final JsonNode body;

    JsonFields(JsonNode body) { this.body = body; }

    JsonNode node(String name) {
        JsonNode n = body.get(name);
        return n == null || n.isNull() ? null : n;
    }

    boolean has(String name) { return node(name) != null; }

    Optional<String> string(String name) {
        JsonNode n = node(name);
        if (n == null) return Optional.empty();
        if (!n.isTextual()) throw wrongType(name, "a string", n);
        return Optional.of(n.textValue());
    }

    Optional<Boolean> bool(String name) {
        JsonNode n = node(name);
        if (n == null) return Optional.empty();
        if (!n.isBoolean()) throw wrongType(name, "a boolean", n);
        return Optional.of(n.booleanValue());
    }

    OptionalInt integer(String name) {
        JsonNode n = node(name);
        if (n == null) return OptionalInt.empty();
        if (!isIntegral(n) || !n.canConvertToInt()) throw wrongType(name, "an integer", n);
        return OptionalInt.of(n.asInt());
    }

    OptionalLong longValue(String name) {
        JsonNode n = node(name);
        if (n == null) return OptionalLong.empty();
        if (!isIntegral(n) || !n.canConvertToLong()) throw wrongType(name, "an integer", n);
        return OptionalLong.of(n.asLong());
    }

    OptionalDouble number(String name) {
        JsonNode n = node(name);
        if (n == null) return OptionalDouble.empty();
        if (!n.isNumber()) throw wrongType(name, "a number", n);
        return OptionalDouble.of(n.asDouble());
    }

    /** Whole numbers written as 3 or 3.0 are both integers. */
    private static boolean isIntegral(JsonNode n) {
        return n.isIntegralNumber() || (n.isFloatingPointNumber() && n.asDouble() == Math.rint(n.asDouble()));
    }

    static InvalidRequestException wrongType(String name, String expected, JsonNode got) {
        return new InvalidRequestException(name, "'" + name + "' must be " + expected + ", got " + describe(got));
    }

    static String describe(JsonNode n) {
        String kind = switch (n.getNodeType()) {
            case STRING -> "a string";
            case NUMBER -> "a number";
            case BOOLEAN -> "a boolean";
            case ARRAY -> "an array";
            case OBJECT -> "an object";
            default -> n.getNodeType().name().toLowerCase();
        };
        String text = n.toString();
        return kind + (text.length() <= 40 ? " (" + text + ")" : "");
    }
}
