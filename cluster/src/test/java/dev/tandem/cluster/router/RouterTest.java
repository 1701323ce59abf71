package dev.tandem.cluster.router;

import dev.tandem.cluster.EmbeddedCluster;
import dev.tandem.cluster.policy.ClusterDesign;
import dev.tandem.cluster.policy.MixedPoolPolicy;
import dev.tandem.cluster.worker.LocalWorker;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineConfig;
import dev.tandem.engine.FinishReason;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.GenerationService;
import dev.tandem.engine.Role;
import dev.tandem.engine.TokenEvent;
import dev.tandem.engine.TokenListener;
import dev.tandem.engine.spec.SpeculativeConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The router over in-process workers on the real 25M model: split designs give the colocated tokens, and every
 * fault (a worker dying, a transfer timing out, nothing left to serve) ends in the same tokens or a clear error.
 */
class RouterTest {
    static final Path MODEL = Path.of(System.getProperty("tandem.shared", "../../shared"), "models", "gutenberg-stories-llama-25m");
    static Model model;
    static int[][] expected;
    static final int MAX = 24;

    static final String[] PROMPTS = {"Once upon a time", "The little dog", "Tom and Lily went to the park to play with their red ball and",
            "The old king had three daughters. The youngest was the most beautiful of all, and every morning she",
            "It was a cold winter night, and", "\"Where are you going?\" asked the", "She opened the door", "In the morning the"};

    /** Small prefill chunks, so that prompts take several steps and faults can land in the middle. */
    static final EngineConfig ENGINE = new EngineConfig(16, 32, 16L << 20, 16, 256, Role.MIXED, false);

    @BeforeAll
    static void load() throws Exception {
        model = ModelLoader.load(MODEL, null);
        expected = new int[PROMPTS.length][];
        try (CpuBackend b = new CpuBackend(1); Engine e = new Engine(model, b, ENGINE)) {
            for (int i = 0; i < PROMPTS.length; i++) expected[i] = run(e, request(i, MAX)).get(60, TimeUnit.SECONDS);
        }
    }

    @AfterAll
    static void close() { model.close(); }

    static GenerationRequest request(int i, int max) {
        return new GenerationRequest(model.tokenizer().encode(PROMPTS[i % PROMPTS.length], true), max, SamplingParams.GREEDY, true, -1);
    }

    /** Tokens of one request as the client sees them; completes on finish, fails on error. */
    static final class Client implements TokenListener {
        final List<Integer> tokens = Collections.synchronizedList(new ArrayList<>());
        final CompletableFuture<int[]> done = new CompletableFuture<>();
        volatile FinishReason reason;
        volatile int generated;

        public void onToken(TokenEvent t) { tokens.add(t.token()); }

        public void onFinish(FinishReason r, int p, int g, int c) {
            reason = r;
            generated = g;
            done.complete(tokens.stream().mapToInt(Integer::intValue).toArray());
        }

        public void onError(Throwable t) { done.completeExceptionally(t); }
    }

    static CompletableFuture<int[]> run(GenerationService s, GenerationRequest r) { return submit(s, r).done; }

    static Client submit(GenerationService s, GenerationRequest r) {
        Client c = new Client();
        s.submit(r, c);
        return c;
    }

    static EmbeddedCluster cluster(ClusterDesign design, int prompt, int token, Router.Config config) {
        return EmbeddedCluster.start(model, config, prompt, token, ENGINE, i -> new CpuBackend(1));
    }

    static void assertAllColocated(GenerationService s, int n) throws Exception {
        List<Client> clients = new ArrayList<>();
        for (int i = 0; i < n; i++) clients.add(submit(s, request(i, MAX)));
        for (int i = 0; i < n; i++) {
            assertArrayEquals(expected[i % PROMPTS.length], clients.get(i).done.get(60, TimeUnit.SECONDS), "request " + i);
            assertEquals(MAX, clients.get(i).generated, "usage counts every token once");
        }
    }

    @Test
    void splitDesignGivesTheColocatedTokens() throws Exception {
        try (EmbeddedCluster c = cluster(ClusterDesign.SPLIT, 1, 1, Router.Config.of(ClusterDesign.SPLIT))) {
            assertAllColocated(c.router(), 16);
            Router.RouterStats s = c.router().routerStats();
            assertEquals(16, s.kvTransfers(), "every request was handed over");
            assertTrue(s.kvBytesSent() > 0);
            assertEquals(1, s.promptWorkers());
            assertEquals(1, s.tokenWorkers());
        }
    }

    /** The client hears once that the prompt entered the prompt worker's step, before its first token. */
    @Test
    void theClientHearsOnceWhenThePromptFirstRunsBeforeItsFirstToken() throws Exception {
        try (EmbeddedCluster c = cluster(ClusterDesign.SPLIT, 1, 1, Router.Config.of(ClusterDesign.SPLIT))) {
            java.util.concurrent.atomic.AtomicInteger scheduled = new java.util.concurrent.atomic.AtomicInteger(), early = new java.util.concurrent.atomic.AtomicInteger();
            CompletableFuture<Integer> tokens = new CompletableFuture<>();
            c.router().submit(request(0, 8), new TokenListener() {
                int n;

                public void onScheduled() { scheduled.incrementAndGet(); }

                public void onToken(TokenEvent t) {
                    if (scheduled.get() == 0) early.incrementAndGet();
                    n++;
                }

                public void onFinish(FinishReason reason, int p, int g, int cached) { tokens.complete(n); }

                public void onError(Throwable e) { tokens.completeExceptionally(e); }
            });
            assertEquals(8, tokens.get(60, TimeUnit.SECONDS));
            assertEquals(1, scheduled.get(), "told once");
            assertEquals(0, early.get(), "before the first token");
        }
    }

    /**
     * Speculative decoding on the split design's token workers (issue 8): n-gram drafts and a draft model that catches
     * up on handed-over sequences in its own cache; greedy output stays the colocated, non-speculative one.
     */
    @Test
    void tokenWorkersSpeculateAndKeepTheColocatedTokens() throws Exception {
        Path draftPath = MODEL.resolveSibling("gutenberg-stories-llama-3m");
        try (Model draft = ModelLoader.load(draftPath, null)) {
            for (SpeculativeConfig spec : new SpeculativeConfig[] {SpeculativeConfig.ngram(4), SpeculativeConfig.draftModel(draft, 3)}) {
                try (EmbeddedCluster c = EmbeddedCluster.start(model, Router.Config.of(ClusterDesign.SPLIT), 1, 1, ENGINE, i -> new CpuBackend(1),
                        ClusterDesign.SPLIT.pools(), spec)) {
                    assertAllColocated(c.router(), 8);
                    assertEquals(8, c.router().routerStats().kvTransfers(), "every request was handed over");
                    var prompt = c.workers().get(0).engine().stats().speculative();
                    var token = c.workers().get(1).engine().stats().speculative();
                    assertTrue(token.acceptedTokens() > 0 && token.drafts() > 0, spec.describe() + ": the token worker speculated: " + token);
                    assertEquals(0, prompt.drafts(), "the prompt worker only prefills");
                    // The router's /metrics figures: the workers' speculation counters summed.
                    assertEquals(token.acceptedTokens(), c.router().stats().speculative().acceptedTokens());
                    assertEquals(token.drafts(), c.router().stats().speculative().drafts());
                }
            }
        }
    }

    @Test
    void mixedDesignGivesTheSameTokensWithoutTransfers() throws Exception {
        try (EmbeddedCluster c = cluster(ClusterDesign.MIXED, 1, 1, Router.Config.of(ClusterDesign.MIXED))) {
            assertAllColocated(c.router(), 8);
            assertEquals(0, c.router().routerStats().kvTransfers());
            assertEquals(2, c.router().routerStats().mixedWorkers());
        }
    }

    @Test
    void theMixedPoolLendsATokenWorkerUnderPromptLoadAndTokensStayTheSame() throws Exception {
        Router.Config config = Router.Config.of(ClusterDesign.SPLIT_MIXED_POOL);
        try (EmbeddedCluster c = EmbeddedCluster.start(model, config, 1, 2, ENGINE, i -> new CpuBackend(1), new MixedPoolPolicy(8, 0.05))) {
            assertAllColocated(c.router(), 24);
            assertTrue(c.router().routerStats().roleChanges() >= 1, "a token worker was lent to the mixed pool");
            long end = System.nanoTime() + 5_000_000_000L;
            while (System.nanoTime() < end && c.workers().stream().anyMatch(w -> w.role() != w.homeRole())) Thread.sleep(20);
            for (LocalWorker w : c.workers()) assertEquals(w.homeRole(), w.role(), "worker " + w.id() + " went home once drained");
        }
    }

    @Test
    void aTokenWorkerDyingMidStreamIsRecomputedElsewhereWithNoTokenLostOrRepeated() throws Exception {
        killTheTokenWorkerMidStream(request(2, 160)); // long enough that the kill lands mid-stream on any machine
    }

    @Test
    void aSeededSampledRequestContinuesItsRandomStreamAfterAFailover() throws Exception {
        GenerationRequest greedy = request(2, 160);
        GenerationRequest sampled = new GenerationRequest(greedy.promptTokens(), greedy.maxTokens(),
                new SamplingParams(1.0f, 0, 1f, 0f, 1f, 64, 0f, 0f, 20261122L), true, -1);
        int[] got = killTheTokenWorkerMidStream(sampled); // the one engine's seeded tokens, though two workers drew them
        assertFalse(Arrays.equals(expected[2], Arrays.copyOf(got, MAX)), "the request was sampled, not greedy");
    }

    /** Runs {@code r} on a split cluster, kills its token worker after a few tokens: the client must get the one engine's tokens. */
    static int[] killTheTokenWorkerMidStream(GenerationRequest r) throws Exception {
        int max = r.maxTokens();
        int[] want;
        try (CpuBackend b = new CpuBackend(1); Engine e = new Engine(model, b, ENGINE)) {
            want = run(e, r).get(60, TimeUnit.SECONDS);
        }
        try (EmbeddedCluster c = cluster(ClusterDesign.SPLIT, 1, 2, Router.Config.of(ClusterDesign.SPLIT))) {
            Client client = submit(c.router(), r);
            long end = System.nanoTime() + 30_000_000_000L;
            while (client.tokens.size() < 6 && System.nanoTime() < end) Thread.onSpinWait();
            LocalWorker victim = c.workers().stream().filter(w -> w.homeRole() == Role.TOKEN && w.load().running() > 0).findFirst().orElseThrow();
            victim.close();
            assertTrue(client.tokens.size() < max, "the worker died mid-stream");
            assertArrayEquals(want, client.done.get(60, TimeUnit.SECONDS));
            assertEquals(max, client.generated);
            assertTrue(c.router().routerStats().failovers() >= 1);
            return want;
        }
    }

    @Test
    void aPromptWorkerDyingBeforeTheFirstTokenIsRetriedElsewhere() throws Exception {
        try (EmbeddedCluster c = cluster(ClusterDesign.SPLIT, 2, 1, Router.Config.of(ClusterDesign.SPLIT))) {
            // A long prompt: 16 chunks of 32 tokens on the prompt worker.
            StringBuilder text = new StringBuilder();
            while (model.tokenizer().encode(text.toString(), true).length < 500) text.append(PROMPTS[3]).append(' ');
            GenerationRequest r = new GenerationRequest(model.tokenizer().encode(text.toString(), true), 8, SamplingParams.GREEDY, true, -1);
            int[] want;
            try (CpuBackend b = new CpuBackend(1); Engine e = new Engine(model, b, ENGINE)) {
                want = run(e, r).get(60, TimeUnit.SECONDS);
            }
            Client client = submit(c.router(), r);
            long end = System.nanoTime() + 30_000_000_000L;
            LocalWorker victim = null;
            while (victim == null && System.nanoTime() < end) {
                for (LocalWorker w : c.workers()) if (w.homeRole() == Role.PROMPT && w.load().pendingPromptTokens() > 0) victim = w;
            }
            assertTrue(client.tokens.isEmpty(), "the prompt worker was still prefilling");
            victim.close();
            assertArrayEquals(want, client.done.get(60, TimeUnit.SECONDS));
            assertTrue(c.router().routerStats().failovers() >= 1);
        }
    }

    @Test
    void aTransferPastItsDeadlineIsRecomputedOnTheTokenWorker() throws Exception {
        Router.Config config = Router.Config.of(ClusterDesign.SPLIT).withTransferTimeout(Duration.ZERO);
        try (EmbeddedCluster c = cluster(ClusterDesign.SPLIT, 1, 1, config)) {
            assertAllColocated(c.router(), 4);
            Router.RouterStats s = c.router().routerStats();
            assertEquals(4, s.recomputes(), "each request's KV was recomputed on the token side");
            assertEquals(0, s.kvTransfers());
            assertTrue(s.kvTransferFailures() >= 4);
        }
    }

    /**
     * The token worker gives up on its reservation while the transfer is still stuck on the prompt side (the order the
     * GPU path showed: the reservation's deadline came before the sender's): the token worker is not at fault, so it
     * recomputes the sequence itself, and the client gets the colocated tokens.
     */
    @Test
    void aReservationThatRunsOutBeforeTheStuckTransferFailsIsRecomputedOnTheTokenWorker() throws Exception {
        Router.Config config = Router.Config.of(ClusterDesign.SPLIT).withTransferTimeout(Duration.ofSeconds(30))
                .withReservationTimeout(Duration.ofMillis(1500));
        try (EmbeddedCluster c = cluster(ClusterDesign.SPLIT, 1, 1, config)) {
            c.transport().holdCommits(true);
            try {
                assertAllColocated(c.router(), 4);
            } finally {
                c.transport().holdCommits(false);
            }
            Router.RouterStats s = c.router().routerStats();
            assertEquals(4, s.recomputes(), "each request was recomputed on the token worker");
            assertEquals(4, s.kvReservationsExpired(), "each after its reservation ran out");
            assertEquals(0, s.failovers(), "no worker was given up on");
        }
    }

    @Test
    void aRequestNoWorkerCanServeEndsWithAClearError() throws Exception {
        try (EmbeddedCluster c = cluster(ClusterDesign.SPLIT, 1, 1, Router.Config.of(ClusterDesign.SPLIT).withPlacementTimeout(Duration.ofSeconds(2)))) {
            c.workers().get(1).close(); // the only token worker
            ExecutionException e = assertThrows(ExecutionException.class, () -> run(c.router(), request(0, 8)).get(10, TimeUnit.SECONDS));
            assertTrue(e.getCause().getMessage().contains("no healthy worker left"), e.getCause().getMessage());
        }
        // More KV blocks than a token worker has: 256 KiB of this model's cache hold 16 blocks of 16 tokens.
        try (EmbeddedCluster c = EmbeddedCluster.start(model, Router.Config.of(ClusterDesign.SPLIT), 1, 1, ENGINE.withKvCacheBytes(256 << 10),
                i -> new CpuBackend(1))) {
            GenerationRequest big = new GenerationRequest(request(0, 1).promptTokens(), 400, SamplingParams.GREEDY, true, -1);
            ExecutionException e = assertThrows(ExecutionException.class, () -> run(c.router(), big).get(10, TimeUnit.SECONDS));
            assertTrue(e.getCause().getMessage().contains("KV blocks"), e.getCause().getMessage());
        }
    }
}
