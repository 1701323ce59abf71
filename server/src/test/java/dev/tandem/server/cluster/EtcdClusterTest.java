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
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Worker processes found through a real etcd (leases of 2 s), by a router started without --model (a worker sends it
 * the tokenizer), and the faults of a process cluster: a token worker
 * killed mid-stream (the stream goes on, nothing lost or repeated), its disappearance from the membership within
 * the lease TTL, and etcd itself stopping (the router serves on with what it knew and says so on /health).
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class EtcdClusterTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int TTL = 2, MAX = 200;
    static final String PROMPT = "Once upon a time";
    static Processes procs;
    static Processes.Proc etcd, router, token1, token2;
    static String url, expected;
    static int t1, t2;

    static String body(boolean stream) {
        return "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": " + MAX + ", \"temperature\": 0, \"ignore_eos\": true, \"stream\": " + stream + "}";
    }

    @BeforeAll
    static void start() throws Exception {
        Path etcdBinary = Stream.of("/usr/bin/etcd", "/usr/local/bin/etcd").map(Path::of).filter(Files::isExecutable).findFirst().orElse(null);
        Assumptions.assumeTrue(etcdBinary != null, "etcd is not installed (Debian: apt-get install etcd-server; .ci/run does it); skipping the etcd cluster tests");
        try (Model model = ModelLoader.load(Processes.MODEL, null); CpuBackend backend = new CpuBackend(1);
             Engine engine = new Engine(model, backend, EngineConfig.DEFAULT.withKvCacheBytes(64L << 20))) {
            OpenAiServer s = OpenAiServer.start(engine, new ServerConfig("127.0.0.1", 0, Optional.empty(), "m", 1 << 20, Duration.ofSeconds(5)));
            try {
                expected = JSON.readTree(Processes.post(s.url() + "/v1/completions", body(false)).body()).path("choices").get(0).path("text").asText();
            } finally {
                s.close();
            }
        }
        procs = new Processes();
        int e = Processes.freePorts(2);
        String etcdUrl = "http://127.0.0.1:" + e;
        etcd = Processes.awaitReady(procs.launch("etcd", List.of(etcdBinary.toString(), "--data-dir", procs.dir().resolve("etcd").toString(),
                "--listen-client-urls", etcdUrl, "--advertise-client-urls", etcdUrl,
                "--listen-peer-urls", "http://127.0.0.1:" + (e + 1), "--initial-advertise-peer-urls", "http://127.0.0.1:" + (e + 1),
                "--initial-cluster", "default=http://127.0.0.1:" + (e + 1))), "ready to serve client requests");
        String m = Processes.MODEL.toString();
        int p = Processes.freePorts(3, e);
        t1 = Processes.freePorts(3, e, p);
        var pw = procs.launch("prompt-worker", "worker", "--role", "prompt", "--model", m, "--port", "" + p, "--threads", "1",
                "--kv-cache-memory", "64M", "--etcd", etcdUrl, "--etcd-ttl", "" + TTL);
        token1 = procs.launch("token-worker-1", "worker", "--role", "token", "--model", m, "--port", "" + t1, "--threads", "1",
                "--kv-cache-memory", "64M", "--etcd", etcdUrl, "--etcd-ttl", "" + TTL);
        t2 = Processes.freePorts(3, p, t1);
        token2 = procs.launch("token-worker-2", "worker", "--role", "token", "--model", m, "--port", "" + t2, "--threads", "1",
                "--kv-cache-memory", "64M", "--etcd", etcdUrl, "--etcd-ttl", "" + TTL);
        Processes.awaitReady(pw, "ready in");
        Processes.awaitReady(token1, "ready in");
        Processes.awaitReady(token2, "ready in");
        int r = Processes.freePorts(1, e, p, t1, t2);
        // No --model: the router asks a worker registered in etcd for its tokenizer, chat template and context.
        router = procs.tandem("router", "router", "--port", "" + r, "--etcd", etcdUrl);
        String ready = router.output();
        assertTrue(ready.contains("tandem router: gutenberg-stories-llama-25m (Hugging Face safetensors"), ready); // the worker's served name
        assertTrue(ready.contains(", tokenizer from worker 127.0.0.1:") && ready.contains(", context 512, router (split) over workers from " + etcdUrl), ready);
        url = "http://127.0.0.1:" + r;
        long end = System.nanoTime() + 10_000_000_000L;
        while (System.nanoTime() < end && Processes.metric(Processes.get(url + "/metrics"), "tandem:token_pool_workers") < 2) Thread.sleep(100);
        assertEquals(2, Processes.metric(Processes.get(url + "/metrics"), "tandem:token_pool_workers"), "both token workers joined through etcd");
    }

    @AfterAll
    static void stop() {
        if (procs != null) procs.close();
    }

    @Test
    @Order(1)
    void aTokenWorkerKilledMidStreamIsReplacedWithNoTokenLostOrRepeated() throws Exception {
        HttpResponse<Stream<String>> res = Processes.HTTP.send(HttpRequest.newBuilder(URI.create(url + "/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofString(body(true))).header("Content-Type", "application/json").build(), HttpResponse.BodyHandlers.ofLines());
        assertEquals(200, res.statusCode());
        StringBuilder text = new StringBuilder();
        int chunks = 0;
        boolean killed = false;
        String finish = null;
        Iterator<String> lines = res.body().iterator();
        while (lines.hasNext()) {
            String line = lines.next();
            if (!line.startsWith("data: ") || line.equals("data: [DONE]")) continue;
            JsonNode choice = JSON.readTree(line.substring(6)).path("choices").get(0);
            text.append(choice.path("text").asText());
            if (!choice.path("finish_reason").isNull()) finish = choice.path("finish_reason").asText();
            if (++chunks == 5 && !killed) {
                killed = true;
                // Kill whichever token worker decodes the request.
                boolean first = Processes.metric(Processes.get("http://127.0.0.1:" + (t1 + 2) + "/metrics"), "vllm:num_requests_running") > 0;
                (first ? token1 : token2).kill();
            }
        }
        assertTrue(killed);
        assertEquals("length", finish);
        assertEquals(expected, text.toString(), "the client saw the colocated completion, each token once");
        assertTrue(Processes.metric(Processes.get(url + "/metrics"), "tandem:failovers_total") >= 1);
    }

    @Test
    @Order(2)
    void theKilledWorkerLeavesTheMembershipWithinTheLeaseTtl() throws Exception {
        long end = System.nanoTime() + (TTL + 3) * 1_000_000_000L;
        while (System.nanoTime() < end && !router.output().contains("left (its etcd lease expired)")) Thread.sleep(100);
        assertTrue(router.output().contains("left (its etcd lease expired)"), router.output());
        String m = Processes.get(url + "/metrics");
        assertEquals(1, Processes.metric(m, "tandem:token_pool_workers"));
        assertEquals(1, Processes.metric(m, "tandem:down_workers"));
    }

    @Test
    @Order(3)
    void withEtcdStoppedTheRouterServesOnWithTheLastMembershipAndSaysSo() throws Exception {
        etcd.kill();
        long end = System.nanoTime() + 5_000_000_000L;
        while (System.nanoTime() < end && !Processes.get(url + "/health").startsWith("DEGRADED")) Thread.sleep(100);
        String health = Processes.get(url + "/health");
        assertTrue(health.startsWith("DEGRADED: etcd at"), health);
        assertTrue(router.output().contains("is unreachable"), "the router logs it");
        HttpResponse<String> res = Processes.post(url + "/v1/completions", body(false));
        assertEquals(200, res.statusCode(), res.body());
        assertEquals(expected, JSON.readTree(res.body()).path("choices").get(0).path("text").asText());
    }
}
