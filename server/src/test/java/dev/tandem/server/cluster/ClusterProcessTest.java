package dev.tandem.server.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineConfig;
import dev.tandem.server.http.OpenAiServer;
import dev.tandem.server.http.ServerConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CI check of the split design across processes: `tandem router` + one `tandem worker --role prompt` + one
 * `tandem worker --role token` on loopback (control plane on gRPC, KV over TCP). 32 concurrent greedy requests
 * must get exactly the colocated engine's completions, and /metrics of the workers and the router must show
 * what moved.
 */
class ClusterProcessTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int N = 32, MAX = 16;
    static final String[] STARTS = {"Once upon a time", "The little dog", "Tom and Lily went to", "The old king had three daughters",
            "It was a cold winter night, and", "\"Where are you going?\" asked the", "She opened the door", "In the morning the"};

    static Processes procs;
    static String router, promptMetrics, tokenMetrics;
    static List<String> expected = new ArrayList<>();

    static String prompt(int i) { return STARTS[i % STARTS.length] + (i >= STARTS.length ? " " + "and then".repeat(i / STARTS.length) : ""); }

    static String body(int i) {
        return "{\"prompt\": " + JSON.valueToTree(prompt(i)) + ", \"max_tokens\": " + MAX + ", \"temperature\": 0, \"ignore_eos\": true}";
    }

    @BeforeAll
    static void start() throws Exception {
        // The colocated reference: one engine behind the same HTTP server.
        try (Model model = ModelLoader.load(Processes.MODEL, null); CpuBackend backend = new CpuBackend(1);
             Engine engine = new Engine(model, backend, EngineConfig.DEFAULT.withKvCacheBytes(64L << 20))) {
            OpenAiServer s = OpenAiServer.start(engine, new ServerConfig("127.0.0.1", 0, Optional.empty(), "m", 1 << 20, Duration.ofSeconds(5)));
            try {
                for (int i = 0; i < N; i++) expected.add(completion(Processes.post(s.url() + "/v1/completions", body(i))));
            } finally {
                s.close();
            }
        }
        procs = new Processes();
        int p = Processes.freePorts(3), t = Processes.freePorts(3, p), r = Processes.freePorts(1, p, t);
        String m = Processes.MODEL.toString();
        var pw = procs.launch("prompt-worker", "worker", "--role", "prompt", "--model", m, "--port", "" + p, "--threads", "1", "--kv-cache-memory", "64M");
        var tw = procs.launch("token-worker", "worker", "--role", "token", "--model", m, "--port", "" + t, "--threads", "1", "--kv-cache-memory", "64M");
        Processes.awaitReady(pw, "ready in");
        Processes.awaitReady(tw, "ready in");
        procs.tandem("router", "router", "--model", m, "--port", "" + r, "--workers", "127.0.0.1:" + p + ",127.0.0.1:" + t);
        router = "http://127.0.0.1:" + r;
        promptMetrics = "http://127.0.0.1:" + (p + 2) + "/metrics";
        tokenMetrics = "http://127.0.0.1:" + (t + 2) + "/metrics";
    }

    @AfterAll
    static void stop() {
        if (procs != null) procs.close();
    }

    /** Text and token count of a completion response. */
    static String completion(HttpResponse<String> res) throws Exception {
        assertEquals(200, res.statusCode(), res.body());
        JsonNode j = JSON.readTree(res.body());
        return j.path("choices").get(0).path("text").asText() + "|" + j.path("usage").path("completion_tokens").asInt();
    }

    @Test
    void thirtyTwoConcurrentGreedyRequestsGetTheColocatedCompletions() throws Exception {
        List<CompletableFuture<String>> runs = new ArrayList<>();
        for (int i = 0; i < N; i++) {
            int k = i;
            runs.add(CompletableFuture.supplyAsync(() -> {
                try {
                    return completion(Processes.post(router + "/v1/completions", body(k)));
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            }, Thread::startVirtualThread));
        }
        for (int i = 0; i < N; i++) assertEquals(expected.get(i), runs.get(i).get(180, TimeUnit.SECONDS), "request " + i + ": " + prompt(i));

        String pm = Processes.get(promptMetrics), tm = Processes.get(tokenMetrics), rm = Processes.get(router + "/metrics");
        assertTrue(Processes.metric(pm, "tandem:kv_transfer_bytes_total") > 0, "the prompt worker sent KV");
        assertTrue(Processes.metric(pm, "tandem:kv_transfers_total") >= N, "every request was handed over");
        assertEquals(Processes.metric(pm, "tandem:kv_transfer_bytes_total"), Processes.metric(tm, "tandem:kv_received_bytes_total"),
                "the token worker received every byte the prompt worker sent");
        assertTrue(Processes.metric(pm, "tandem:kv_transfer_seconds_total") >= 0);
        assertEquals(0, Processes.metric(pm, "tandem:worker_role"), "prompt pool");
        assertEquals(1, Processes.metric(tm, "tandem:worker_role"), "token pool");
        assertTrue(Processes.metric(rm, "tandem:kv_transfer_bytes_total") > 0);
        assertTrue(Processes.metric(rm, "tandem:kv_transfer_seconds_total") >= 0);
        assertEquals(1, Processes.metric(rm, "tandem:prompt_pool_workers"));
        assertEquals(1, Processes.metric(rm, "tandem:token_pool_workers"));
        assertEquals(0, Processes.metric(rm, "tandem:role_changes_total"));
        assertEquals(0, Processes.metric(rm, "tandem:failovers_total"));
    }
}
