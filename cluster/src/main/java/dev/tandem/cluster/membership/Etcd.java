package dev.tandem.cluster.membership;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The few etcd v3 calls membership needs (lease grant / keep-alive / revoke, put, prefix range, prefix watch), through
 * etcd's JSON gateway (/v3/...), which every etcd 3.4+ server answers: no client library and no protoc step. The
 * gateway serves a watch as one long HTTP response carrying a JSON object per batch of changes.
 */
public final class Etcd {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final URI base;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();

    public Etcd(String url) {
        this.base = URI.create(url.endsWith("/") ? url.substring(0, url.length() - 1) : url);
    }

    public String url() { return base.toString(); }

    /** A lease of {@code ttlSeconds}; keys put under it vanish when it is not kept alive. */
    public long grant(long ttlSeconds) throws IOException {
        return call("/v3/lease/grant", Map.of("TTL", ttlSeconds)).path("ID").asLong();
    }

    /** Renews the lease; false when it has expired already (the caller grants a new one and registers again). */
    public boolean keepAlive(long lease) throws IOException {
        JsonNode r = call("/v3/lease/keepalive", Map.of("ID", lease)).path("result");
        return r.path("TTL").asLong(0) > 0;
    }

    public void revoke(long lease) throws IOException { call("/v3/lease/revoke", Map.of("ID", lease)); }

    public void put(String key, String value, long lease) throws IOException {
        call("/v3/kv/put", Map.of("key", b64(key), "value", b64(value), "lease", lease));
    }

    /** Every key under {@code prefix} with its value, and the store's revision they were read at (a watch goes on from there). */
    public Snapshot snapshot(String prefix) throws IOException {
        JsonNode r = call("/v3/kv/range", Map.of("key", b64(prefix), "range_end", rangeEnd(prefix)));
        Map<String, String> out = new LinkedHashMap<>();
        for (JsonNode kv : r.path("kvs")) out.put(unb64(kv.path("key").asText()), unb64(kv.path("value").asText()));
        return new Snapshot(out, r.path("header").path("revision").asLong());
    }

    public record Snapshot(Map<String, String> values, long revision) {}

    /** One key's change: its new value, or null when it was deleted (or its lease expired). */
    public record Change(String key, String value) {}

    /**
     * Watches every key under {@code prefix} from {@code fromRevision} on (so nothing between a {@link #snapshot} and
     * the watch is missed). Read the changes with {@link Watch#next}; they come as etcd commits them, not on a poll.
     */
    public Watch watch(String prefix, long fromRevision) throws IOException {
        String body = JSON.writeValueAsString(Map.of("create_request",
                Map.of("key", b64(prefix), "range_end", rangeEnd(prefix), "start_revision", fromRevision)));
        HttpResponse<InputStream> res;
        try {
            res = http.send(HttpRequest.newBuilder(base.resolve("/v3/watch")).POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                    HttpResponse.BodyHandlers.ofInputStream());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
        if (res.statusCode() != 200) {
            try (InputStream in = res.body()) {
                throw new IOException("etcd /v3/watch: HTTP " + res.statusCode() + " " + new String(in.readAllBytes(), StandardCharsets.UTF_8));
            }
        }
        return new Watch(res.body());
    }

    /** An open watch: the gateway's stream of JSON objects, one per batch of changes. Close it to stop watching. */
    public static final class Watch implements AutoCloseable {
        private final InputStream in;
        private final MappingIterator<JsonNode> messages;

        Watch(InputStream in) throws IOException {
            this.in = in;
            this.messages = JSON.readerFor(JsonNode.class).readValues(in);
        }

        /**
         * Blocks until the next batch of changes (in commit order); null when etcd ended the stream (it stopped, or the
         * watch was closed). Throws when the stream broke or etcd cancelled the watch (its start revision was compacted).
         */
        public List<Change> next() throws IOException {
            while (true) {
                try {
                    if (!messages.hasNextValue()) return null;
                    JsonNode r = messages.nextValue().path("result");
                    if (r.path("canceled").asBoolean(false)) {
                        throw new IOException("etcd cancelled the watch (" + r.path("cancel_reason").asText("compacted at revision "
                                + r.path("compact_revision").asText()) + ")");
                    }
                    JsonNode events = r.path("events");
                    if (events.isEmpty()) continue; // the "created" reply, or a progress notice
                    List<Change> out = new ArrayList<>(events.size());
                    for (JsonNode e : events) {
                        String key = unb64(e.path("kv").path("key").asText());
                        boolean deleted = "DELETE".equals(e.path("type").asText()); // PUT is the default, left out of the JSON
                        out.add(new Change(key, deleted ? null : unb64(e.path("kv").path("value").asText())));
                    }
                    return out;
                } catch (UncheckedIOException e) {
                    throw e.getCause();
                }
            }
        }

        @Override
        public void close() {
            try {
                in.close();
            } catch (IOException ignored) {
                // closing an HTTP stream that already broke
            }
        }
    }

    private static String rangeEnd(String prefix) {
        byte[] end = prefix.getBytes(StandardCharsets.UTF_8);
        end[end.length - 1]++;
        return Base64.getEncoder().encodeToString(end);
    }

    private JsonNode call(String path, Map<String, Object> body) throws IOException {
        try {
            HttpResponse<String> res = http.send(HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofSeconds(2))
                    .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body))).build(), HttpResponse.BodyHandlers.ofString());
            if (res.statusCode() != 200) throw new IOException("etcd " + path + ": HTTP " + res.statusCode() + " " + res.body());
            return JSON.readTree(res.body());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    private static String b64(String s) { return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8)); }

    private static String unb64(String s) { return new String(Base64.getDecoder().decode(s), StandardCharsets.UTF_8); }
}
