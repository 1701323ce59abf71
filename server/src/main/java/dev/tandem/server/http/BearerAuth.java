package dev.tandem.server.http;

import io.helidon.http.HeaderNames;
import io.helidon.webserver.http.Filter;
import io.helidon.webserver.http.FilterChain;
import io.helidon.webserver.http.RoutingRequest;
import io.helidon.webserver.http.RoutingResponse;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Set;

/** --api-key: every request but the open paths (health, metrics) needs "Authorization: Bearer KEY", else 401. */
final class BearerAuth implements Filter {
    private final byte[] key;
    private final Set<String> open;

    BearerAuth(String key, Set<String> openPaths) {
        this.key = key.getBytes(StandardCharsets.UTF_8);
        this.open = Set.copyOf(openPaths);
    }

    @Override
    public void filter(FilterChain chain, RoutingRequest req, RoutingResponse res) {
        if (open.contains(req.path().path()) || authorized(req.headers().first(HeaderNames.AUTHORIZATION).orElse(null))) {
            chain.proceed();
            return;
        }
        ErrorMapper.send(res, new ApiError(401, "authentication_error",
                "missing or wrong API key: send the header 'Authorization: Bearer <key>' with the server's --api-key", null, "invalid_api_key"));
    }

    private boolean authorized(String header) {
        if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) return false;
        return MessageDigest.isEqual(key, header.substring(7).trim().getBytes(StandardCharsets.UTF_8));
    }
}
