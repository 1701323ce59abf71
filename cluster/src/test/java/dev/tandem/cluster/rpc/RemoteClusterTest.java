package dev.tandem.cluster.rpc;

import dev.tandem.cluster.policy.ClusterDesign;
import dev.tandem.cluster.policy.MixedPoolPolicy;
import dev.tandem.cluster.router.Router;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineConfig;
import dev.tandem.engine.FinishReason;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.Role;
import dev.tandem.engine.TokenEvent;
import dev.tandem.engine.TokenListener;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The control plane without process start-up: workers behind real gRPC servers and TCP KV servers on loopback,
 * driven through {@link RemoteWorker}s by a router in the same JVM. Covers Submit in its three modes, Recompute
 * (a transfer past its deadline) and SetRole (the mixed pool), each giving the colocated tokens.
 */
class RemoteClusterTest {
    static final Path MODEL = Path.of(System.getProperty("tandem.shared", "../../shared"), "models", "gutenberg-stories-llama-25m");
    static final EngineConfig ENGINE = new EngineConfig(16, 64, 16L << 20, 16, 256, Role.MIXED, false);
    static final String[] PROMPTS = {"Once upon a time", "The little dog", "Tom and Lily went to the park", "The old king had three daughters"};
    static final int MAX = 16;
    static Model model;
    static int[][] expected;

    @BeforeAll
    static void load() throws Exception {
        model = ModelLoader.load(MODEL, null);
        expected = new int[PROMPTS.length][];
        try (CpuBackend b = new CpuBackend(1); Engine e = new Engine(model, b, ENGINE)) {
            for (int i = 0; i < PROMPTS.length; i++) expected[i] = run(e::submit, request(i)).get(60, TimeUnit.SECONDS);
        }
    }

    @AfterAll
    static void close() { model.close(); }

    static GenerationRequest request(int i) {
        return new GenerationRequest(model.tokenizer().encode(PROMPTS[i], true), MAX, SamplingParams.GREEDY, true, -1);
    }

    interface Submit {
        Object submit(GenerationRequest r, TokenListener l);
    }

    static CompletableFuture<int[]> run(Submit s, GenerationRequest r) {
        List<Integer> tokens = Collections.synchronizedList(new ArrayList<>());
        CompletableFuture<int[]> done = new CompletableFuture<>();
        s.submit(r, new TokenListener() {
            public void onToken(TokenEvent t) { tokens.add(t.token()); }

            public void onFinish(FinishReason reason, int p, int g, int c) { done.complete(tokens.stream().mapToInt(Integer::intValue).toArray()); }

            public void onError(Throwable t) { done.completeExceptionally(t); }
        });
        return done;
    }

    /** Two worker "processes" in this JVM: engine + control plane + KV server each. */
    static final class Nodes implements AutoCloseable {
        final List<AutoCloseable> parts = new ArrayList<>();
        final List<RemoteWorker> workers = new ArrayList<>();

        Nodes(Role... roles) throws Exception {
            for (Role role : roles) {
                CpuBackend b = new CpuBackend(1);
                Engine e = new Engine(model, b, new EngineConfig(ENGINE.maxNumSeqs(), ENGINE.maxNumBatchedTokens(), ENGINE.kvCacheBytes(),
                        ENGINE.blockSize(), ENGINE.maxQueue(), role, false));
                WorkerNode n = new WorkerNode(e, "127.0.0.1", 0, 0, "127.0.0.1");
                parts.addAll(List.of(n, e, b));
                workers.add(new RemoteWorker(workers.size(), "127.0.0.1:" + n.port(), Duration.ofMillis(100), Duration.ofSeconds(10)));
            }
        }

        @Override
        public void close() throws Exception {
            workers.forEach(RemoteWorker::close);
            for (AutoCloseable c : parts) c.close();
        }
    }

    @Test
    void aRouterOverTheControlPlaneGivesTheColocatedTokens() throws Exception {
        try (Nodes n = new Nodes(Role.PROMPT, Role.TOKEN)) {
            Router router = new Router(n.workers, model.tokenizer(), model.config().contextLength(), Router.Config.of(ClusterDesign.SPLIT));
            try {
                List<CompletableFuture<int[]>> runs = new ArrayList<>();
                for (int i = 0; i < 8; i++) runs.add(run(router::submit, request(i % PROMPTS.length)));
                for (int i = 0; i < 8; i++) assertArrayEquals(expected[i % PROMPTS.length], runs.get(i).get(60, TimeUnit.SECONDS), "request " + i);
                Thread.sleep(300); // one poll: the router's view of the workers' counters
                assertEquals(8, router.routerStats().kvTransfers());
            } finally {
                router.close();
            }
        }
    }

    @Test
    void aTransferPastItsDeadlineIsRecomputedThroughTheControlPlane() throws Exception {
        try (Nodes n = new Nodes(Role.PROMPT, Role.TOKEN)) {
            Router router = new Router(n.workers, model.tokenizer(), model.config().contextLength(),
                    Router.Config.of(ClusterDesign.SPLIT).withTransferTimeout(Duration.ZERO));
            try {
                assertArrayEquals(expected[2], run(router::submit, request(2)).get(60, TimeUnit.SECONDS));
                assertEquals(1, router.routerStats().recomputes());
            } finally {
                router.close();
            }
        }
    }

    @Test
    void theMixedPoolChangesRolesOverTheControlPlane() throws Exception {
        try (Nodes n = new Nodes(Role.PROMPT, Role.TOKEN, Role.TOKEN)) {
            Router.Config config = Router.Config.of(ClusterDesign.SPLIT_MIXED_POOL);
            Router router = new Router(n.workers, model.tokenizer(), model.config().contextLength(), config,
                    ClusterDesign.SPLIT_MIXED_POOL.routing(16), new MixedPoolPolicy(4, 0.05));
            try {
                List<CompletableFuture<int[]>> runs = new ArrayList<>();
                for (int i = 0; i < 16; i++) runs.add(run(router::submit, request(i % PROMPTS.length)));
                for (int i = 0; i < 16; i++) assertArrayEquals(expected[i % PROMPTS.length], runs.get(i).get(60, TimeUnit.SECONDS), "request " + i);
                assertTrue(router.routerStats().roleChanges() >= 1, "a token worker was lent (SetRole)");
            } finally {
                router.close();
            }
        }
    }
}
