package dev.tandem.cluster.membership;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The few etcd v3 calls membership needs (lease grant / keep-alive / revoke, put, prefix range), through etcd's
 * JSON gateway (/v3/...), which every etcd 3.4+ server answers: no client library and no protoc step.
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

    /** Every key under {@code prefix} with its value. */
    public Map<String, String> list(String prefix) throws IOException {
        byte[] end = prefix.getBytes(StandardCharsets.UTF_8);
        end[end.length - 1]++;
        JsonNode r = call("/v3/kv/range", Map.of("key", b64(prefix), "range_end", Base64.getEncoder().encodeToString(end)));
        Map<String, String> out = new LinkedHashMap<>();
        for (JsonNode kv : r.path("kvs")) out.put(unb64(kv.path("key").asText()), unb64(kv.path("value").asText()));
        return out;
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
