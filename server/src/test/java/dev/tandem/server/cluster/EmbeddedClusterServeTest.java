package dev.tandem.server.cluster;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.cluster.EmbeddedCluster;
import dev.tandem.cluster.policy.ClusterDesign;
import dev.tandem.cluster.router.Router;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.engine.EngineConfig;
import dev.tandem.server.http.OpenAiServer;
import dev.tandem.server.http.ServerConfig;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `tandem serve --design ...`: the unchanged OpenAI server in front of a whole cluster in this JVM. */
class EmbeddedClusterServeTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String BODY = "{\"prompt\": \"The little dog\", \"max_tokens\": 20, \"temperature\": 0, \"ignore_eos\": true}";

    static String complete(ClusterDesign design, StringBuilder metrics) throws Exception {
        try (Model model = ModelLoader.load(Processes.MODEL, null);
             EmbeddedCluster cluster = EmbeddedCluster.start(model, Router.Config.of(design), 1, 1, EngineConfig.DEFAULT.withKvCacheBytes(32L << 20),
                     i -> new CpuBackend(1))) {
            OpenAiServer server = OpenAiServer.start(cluster.router(),
                    new ServerConfig("127.0.0.1", 0, Optional.empty(), "m", 1 << 20, Duration.ofSeconds(5)));
            try {
                var res = Processes.post(server.url() + "/v1/completions", BODY);
                assertEquals(200, res.statusCode(), res.body());
                // Engines publish their counters at the end of each step, just after the tokens went out.
                String m = Processes.get(server.url() + "/metrics");
                long end = System.nanoTime() + 5_000_000_000L;
                while (Processes.metric(m, "vllm:generation_tokens_total") < 20 && System.nanoTime() < end) {
                    Thread.sleep(20);
                    m = Processes.get(server.url() + "/metrics");
                }
                metrics.append(m);
                assertEquals("OK", Processes.get(server.url() + "/health"));
                return JSON.readTree(res.body()).path("choices").get(0).path("text").asText();
            } finally {
                server.close();
            }
        }
    }

    @Test
    void theSplitClusterAnswersAsTheColocatedOneAndReportsItsTransfers() throws Exception {
        StringBuilder mixedMetrics = new StringBuilder(), splitMetrics = new StringBuilder();
        String mixed = complete(ClusterDesign.MIXED, mixedMetrics);
        String split = complete(ClusterDesign.SPLIT, splitMetrics);
        assertEquals(mixed, split);
        assertEquals(2, Processes.metric(mixedMetrics.toString(), "tandem:mixed_pool_workers"));
        assertEquals(0, Processes.metric(mixedMetrics.toString(), "tandem:kv_transfers_total"));
        assertEquals(1, Processes.metric(splitMetrics.toString(), "tandem:kv_transfers_total"));
        assertTrue(Processes.metric(splitMetrics.toString(), "tandem:kv_transfer_bytes_total") > 0);
        assertEquals(20, Processes.metric(splitMetrics.toString(), "vllm:generation_tokens_total"), "tokens counted once over both workers");
    }
}
