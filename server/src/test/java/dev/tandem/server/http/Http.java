package dev.tandem.server.http;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Raw HTTP for the tests: java.net.http for whole responses, a plain socket for streams that are cut off mid-way. */
final class Http {
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient CLIENT = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    private Http() {}

    record Response(int status, String body, HttpResponse<String> raw) {
        JsonNode json() {
            try {
                return JSON.readTree(body);
            } catch (IOException e) {
                throw new UncheckedIOException("not JSON: " + body, e);
            }
        }

        /** The data payloads of an SSE body, [DONE] included. */
        List<String> events() {
            List<String> out = new ArrayList<>();
            for (String line : body.split("\n")) if (line.startsWith("data: ")) out.add(line.substring(6));
            return out;
        }
    }

    static Response post(String url, String path, String json, String... headers) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url + path)).timeout(Duration.ofSeconds(120))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(json));
        for (int i = 0; i < headers.length; i += 2) b.header(headers[i], headers[i + 1]);
        return send(b.build());
    }

    static Response get(String url, String path, String... headers) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url + path)).timeout(Duration.ofSeconds(30)).GET();
        for (int i = 0; i < headers.length; i += 2) b.header(headers[i], headers[i + 1]);
        return send(b.build());
    }

    static Response send(HttpRequest request) {
        try {
            HttpResponse<String> r = CLIENT.send(request, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
            return new Response(r.statusCode(), r.body(), r);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** The value of one sample line of /metrics, e.g. metric("vllm:kv_cache_usage_perc"). */
    static double metric(String url, String name) { return metricIn(get(url, "/metrics").body(), name); }

    /** A value from the text of one /metrics scrape. */
    static double metricIn(String text, String name) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + "(\\{[^}]*})? ([^ \\n]+)").matcher(text);
        if (!m.find()) throw new AssertionError(name + " not in /metrics:\n" + text);
        return Double.parseDouble(m.group(2));
    }

    /** A streamed request on its own socket, read line by line, that the test can cut off. */
    static final class Stream implements AutoCloseable {
        final Socket socket;
        final BufferedReader in;

        Stream(String url, String path, String json) throws IOException {
            URI uri = URI.create(url);
            socket = new Socket(uri.getHost(), uri.getPort());
            socket.setSoTimeout(60_000);
            byte[] body = json.getBytes(StandardCharsets.UTF_8);
            OutputStream out = socket.getOutputStream();
            out.write(("POST " + path + " HTTP/1.1\r\nHost: " + uri.getHost() + "\r\nContent-Type: application/json\r\nContent-Length: "
                    + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(body);
            out.flush();
            in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
        }

        /** Reads up to and including the next SSE data line and returns its payload; null at the end of the stream. */
        String nextEvent() throws IOException {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.startsWith("data: ")) return line.substring(6);
            }
            return null;
        }

        /** The status line, e.g. "HTTP/1.1 200 OK". */
        String statusLine() throws IOException { return in.readLine(); }

        @Override
        public void close() throws IOException { socket.close(); }
    }
}
