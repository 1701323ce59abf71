package dev.tandem.cluster.device;

import dev.tandem.cluster.EmbeddedCluster;
import dev.tandem.cluster.policy.ClusterDesign;
import dev.tandem.cluster.router.Router;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.cuda.CudaDriver;
import dev.tandem.cuda.Nccl;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineConfig;
import dev.tandem.engine.FinishReason;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.Role;
import dev.tandem.engine.TokenEvent;
import dev.tandem.engine.TokenListener;
import dev.tandem.engine.handover.HandoverTarget;
import dev.tandem.engine.handover.Reservation;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

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
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Splitwise on GPUs: prompt and token workers with their KV caches on the device, KV handed over layer by layer over
 * NCCL between two GPUs (a device copy when both share one), give exactly the greedy tokens of the colocated design
 * on the same GPUs; a transfer stuck past its deadline is aborted and the sequence recomputed on the token worker.
 * Skips without a CUDA GPU (the NCCL cases without two GPUs and libnccl); runs on the GPU machine. Every case has a
 * time limit of its own (on a thread of its own, so a call stuck in the driver cannot hold it): an earlier run of
 * this class on two H200s hung without saying where.
 */
@Timeout(value = 150, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class DeviceSplitTest {
    /** The small draft model of the test pair (4.6 MB packed): it travels in every device pack, the serving one too. */
    static final Path MODEL = Path.of(System.getProperty("tandem.shared", "../../shared"), "models", "gutenberg-stories-llama-3m");
    static final String[] PROMPTS = {"Once upon a time", "The little dog", "Tom and Lily went to the park to play with their red ball and",
            "The old king had three daughters. The youngest was the most beautiful of all, and every morning she",
            "It was a cold winter night, and", "\"Where are you going?\" asked the", "She opened the door", "In the morning the"};
    static final int MAX = 24;
    /** Prefill chunks of 32 tokens: long prompts stream in several steps, and blocks shared by two chunks go twice. */
    static final EngineConfig ENGINE = new EngineConfig(16, 32, 16L << 20, 16, 256, Role.MIXED, false);

    static Model model;
    static int gpus;
    static int[][] expected;

    @BeforeAll
    static void load() throws Exception {
        String why = CudaDriver.unavailableReason();
        if (why != null) System.err.println("DeviceSplitTest skipped: no CUDA GPU here (" + why + "); it runs on the GPU machine");
        assumeTrue(why == null, "no CUDA GPU here (" + why + ")");
        gpus = CudaDriver.get().deviceCount();
        model = ModelLoader.load(MODEL, null);
        // The colocated design on the same GPUs (one mixed worker per GPU) is the reference.
        try (EmbeddedCluster c = cluster(ClusterDesign.MIXED, 0, gpus > 1 ? 1 : 0, Router.Config.of(ClusterDesign.MIXED))) {
            expected = run(c, 16);
        }
    }

    @AfterAll
    static void close() {
        if (model != null) model.close();
    }

    static EmbeddedCluster cluster(ClusterDesign design, int promptGpu, int tokenGpu, Router.Config config) {
        return EmbeddedCluster.start(model, config, 1, 1, ENGINE, i -> new CudaBackend(i == 0 ? promptGpu : tokenGpu, CudaBackend.Precision.F32));
    }

    static int[][] run(EmbeddedCluster c, int n) throws Exception {
        List<CompletableFuture<int[]>> done = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            GenerationRequest r = new GenerationRequest(model.tokenizer().encode(PROMPTS[i % PROMPTS.length], true), MAX, SamplingParams.GREEDY, true, -1);
            done.add(submit(c.router(), r));
        }
        int[][] out = new int[n][];
        for (int i = 0; i < n; i++) out[i] = done.get(i).get(120, TimeUnit.SECONDS);
        return out;
    }

    static CompletableFuture<int[]> submit(Router router, GenerationRequest r) {
        CompletableFuture<int[]> f = new CompletableFuture<>();
        List<Integer> tokens = Collections.synchronizedList(new ArrayList<>());
        router.submit(r, new TokenListener() {
            public void onToken(TokenEvent t) { tokens.add(t.token()); }

            public void onFinish(FinishReason reason, int p, int g, int cached) { f.complete(tokens.stream().mapToInt(Integer::intValue).toArray()); }

            public void onError(Throwable t) { f.completeExceptionally(t); }
        });
        return f;
    }

    static void assertColocatedTokens(int[][] got) {
        for (int i = 0; i < got.length; i++) {
            assertEquals(MAX, got[i].length, "request " + i + " got every token once");
            assertArrayEquals(expected[i], got[i], "request " + i + " ('" + PROMPTS[i % PROMPTS.length] + "')");
        }
    }

    static void assumeNcclPair() {
        assumeTrue(gpus >= 2, "NCCL hand-over needs two GPUs, this machine has " + gpus);
        String why = Nccl.unavailableReason();
        assumeTrue(why == null, "no NCCL here (" + why + ")");
    }

    @Test
    void splitOverNcclBetweenTwoGpusGivesTheColocatedTokens() throws Exception {
        assumeNcclPair();
        try (EmbeddedCluster c = cluster(ClusterDesign.SPLIT, 0, 1, Router.Config.of(ClusterDesign.SPLIT))) {
            assertColocatedTokens(run(c, 16));
            Router.RouterStats s = c.router().routerStats();
            assertEquals(16, s.kvTransfers(), "every request was handed over");
            assertEquals(0, s.recomputes(), "no hand-over fell back to a recompute");
            assertTrue(s.kvBytesSent() > 0);
        }
    }

    @Test
    void splitOnOneGpuHandsOverByDeviceCopyAndGivesTheColocatedTokens() throws Exception {
        try (EmbeddedCluster c = cluster(ClusterDesign.SPLIT, 0, 0, Router.Config.of(ClusterDesign.SPLIT))) {
            int[][] got = run(c, 16);
            // One GPU's colocated reference is what the two-GPU reference is, kernel for kernel.
            assertColocatedTokens(got);
            assertEquals(16, c.router().routerStats().kvTransfers());
            assertEquals(0, c.router().routerStats().recomputes());
        }
    }

    /**
     * The path between worker processes, without the gRPC control plane around it: the token worker's KV port
     * ({@link DeviceKvServer}) takes the NCCL unique id from the prompt worker's connection, both join, and each
     * layer's header travels on the connection while its bytes go GPU to GPU.
     */
    @Test
    void aTokenWorkerBehindItsKvPortGetsTheKvOverNcclAndGivesTheColocatedTokens() throws Exception {
        assumeNcclPair();
        try (CudaBackend pb = new CudaBackend(0, CudaBackend.Precision.F32); CudaBackend tb = new CudaBackend(1, CudaBackend.Precision.F32);
             Engine prompt = new Engine(model, pb, with(Role.PROMPT)); Engine token = new Engine(model, tb, with(Role.TOKEN))) {
            DeviceKvHub hub = new DeviceKvHub();
            try (DeviceKvServer server = new DeviceKvServer(tb, token.kvStorage(), token.kvReceiver(), "127.0.0.1", 0, hub);
                 DeviceKvTransport transport = new DeviceKvTransport(pb, new DeviceKvHub())) {
                String address = "127.0.0.1:" + server.port();
                List<CompletableFuture<int[]>> done = new ArrayList<>();
                for (int i = 0; i < 8; i++) {
                    GenerationRequest r = new GenerationRequest(model.tokenizer().encode(PROMPTS[i], true), MAX, SamplingParams.GREEDY, true, -1);
                    Collector c = new Collector();
                    Reservation res = token.reserve(r, c, Duration.ofSeconds(60));
                    prompt.submit(r, c, new HandoverTarget(transport, address, res.id(), Duration.ofSeconds(60)));
                    done.add(c.done);
                }
                int[][] got = new int[8][];
                for (int i = 0; i < 8; i++) got[i] = done.get(i).get(120, TimeUnit.SECONDS);
                assertColocatedTokens(got);
                assertEquals(8, transport.stats().handovers());
                assertEquals(0, transport.stats().failures());
                assertTrue(token.load().kvBytesReceived() > 0, "the token worker counted the KV it received");
            }
        }
    }

    static EngineConfig with(Role role) {
        return new EngineConfig(ENGINE.maxNumSeqs(), ENGINE.maxNumBatchedTokens(), ENGINE.kvCacheBytes(), ENGINE.blockSize(), ENGINE.maxQueue(), role, false);
    }

    /** One request's tokens from both workers: the first from the prompt worker, the rest from the token worker. */
    static final class Collector implements TokenListener {
        final List<Integer> tokens = Collections.synchronizedList(new ArrayList<>());
        final CompletableFuture<int[]> done = new CompletableFuture<>();

        public void onToken(TokenEvent t) { tokens.add(t.token()); }

        public void onFinish(FinishReason reason, int p, int g, int cached) {
            if (reason != FinishReason.HANDED_OVER) done.complete(tokens.stream().mapToInt(Integer::intValue).toArray());
        }

        public void onError(Throwable t) { done.completeExceptionally(t); }
    }

    private static long failedOnEitherSide(EmbeddedCluster c) {
        Router.RouterStats s = c.router().routerStats();
        return s.kvTransferFailures() + s.kvReservationsExpired();
    }

    @Test
    void aStuckTransferIsAbortedAtItsDeadlineRecomputedOnTheTokenWorkerAndTheLinkRebuilt() throws Exception {
        int tokenGpu = gpus >= 2 && Nccl.unavailableReason() == null ? 1 : 0;
        Router.Config config = Router.Config.of(ClusterDesign.SPLIT).withTransferTimeout(Duration.ofSeconds(2));
        try (EmbeddedCluster c = cluster(ClusterDesign.SPLIT, 0, tokenGpu, config)) {
            c.deviceHub().stallDeliveries(Duration.ofSeconds(4));
            int[][] stuck = run(c, 2);
            Router.RouterStats s = c.router().routerStats();
            assertTrue(s.recomputes() >= 1, "a hand-over past its deadline was recomputed on the token side (" + s.recomputes() + ")");
            // Seen failed on one side: the sender's deadline, or the token worker's reservation running out first (then the
            // router cancels the sender, whose stuck hand-over ends as aborted; its failure count can also come late).
            for (long end = System.nanoTime() + 15_000_000_000L; failedOnEitherSide(c) < 1 && System.nanoTime() < end; ) Thread.sleep(50);
            assertTrue(failedOnEitherSide(c) >= 1, "the stuck transfer was counted as failed (sender) or expired (token worker)");
            for (int i = 0; i < stuck.length; i++) assertArrayEquals(expected[i], stuck[i], "recomputed request " + i);
            // The aborted path is replaced (a new communicator between the GPUs) and hand-overs work again. Hand-overs queued
            // behind the stalled layers may still fail (and be recomputed) when the receiving rank gives up on its late
            // layer, which can come after the stall ends; the rebuild follows that failure, so a later round goes through.
            c.deviceHub().stallDeliveries(Duration.ZERO);
            Router.RouterStats after = null;
            boolean through = false;
            for (int round = 0; round < 5 && !through; round++) {
                long before = c.router().routerStats().kvTransfers();
                assertColocatedTokens(run(c, 8));
                after = c.router().routerStats();
                through = after.kvTransfers() == before + 8;
            }
            assertTrue(through, "a round of 8 hand-overs after the failure all went over the path (" + after + ")");
            if (tokenGpu != 0) {
                assertTrue(c.deviceTransports().get(0).pathsRebuilt() >= 1, "the aborted NCCL path was rebuilt (" + after + ")");
            }
        }
    }
}
