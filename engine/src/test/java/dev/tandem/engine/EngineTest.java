package dev.tandem.engine;

import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.sampling.SamplingParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The serving engine on the real 25M test model: batching, preemption, cancellation and prefix caching. */
class EngineTest {
    static final Path MODEL = Path.of(System.getProperty("tandem.shared", "../../shared"), "models", "gutenberg-stories-llama-25m");
    static Model model;
    static CpuBackend backend;

    @BeforeAll
    static void load() {
        model = ModelLoader.load(MODEL, null);
        backend = new CpuBackend(Runtime.getRuntime().availableProcessors());
    }

    @AfterAll
    static void close() {
        backend.close();
        model.close();
    }

    static final String[] PROMPTS = {"Once upon a time", "The little dog", "Tom and Lily went to", "The old king had three daughters",
            "It was a cold winter night, and", "\"Where are you going?\" asked the", "She opened the door", "In the morning the"};

    record Out(int[] tokens, FinishReason reason) {}

    static CompletableFuture<Out> submit(Engine e, GenerationRequest r) {
        CompletableFuture<Out> f = new CompletableFuture<>();
        List<Integer> toks = new ArrayList<>();
        e.submit(r, new TokenListener() {
            public void onToken(TokenEvent t) { toks.add(t.token()); }

            public void onFinish(FinishReason reason, int p, int g, int c) { f.complete(new Out(toks.stream().mapToInt(i -> i).toArray(), reason)); }

            public void onError(Throwable t) { f.completeExceptionally(t); }
        });
        return f;
    }

    static GenerationRequest greedy(int i, int max) {
        return new GenerationRequest(model.tokenizer().encode(PROMPTS[i % PROMPTS.length], true), max, SamplingParams.GREEDY, true, -1);
    }

    static int[][] alone(int n, int max) {
        int[][] out = new int[n][];
        try (Engine e = new Engine(model, backend, EngineConfig.DEFAULT.withPrefixCaching(false))) {
            for (int i = 0; i < n; i++) out[i] = submit(e, greedy(i, max)).join().tokens();
        }
        return out;
    }

    @Test
    void sixteenConcurrentGreedyRequestsGetTheirSoloTokens() {
        int max = 24;
        int[][] solo = alone(8, max);
        try (Engine e = new Engine(model, backend, EngineConfig.DEFAULT.withMaxNumBatchedTokens(64))) {
            List<CompletableFuture<Out>> fs = new ArrayList<>();
            for (int i = 0; i < 16; i++) fs.add(submit(e, greedy(i, max)));
            for (int i = 0; i < 16; i++) {
                Out o = fs.get(i).join();
                assertEquals(FinishReason.LENGTH, o.reason());
                assertArrayEquals(solo[i % 8], o.tokens(), "request " + i);
            }
            assertTrue(e.stats().steps() < 16 * max, "requests were batched: " + e.stats().steps() + " steps");
        }
    }

    @Test
    void aSequenceGetsItsSoloTokensAmongSixtyThreeOthers() {
        int max = 12;
        int[][] solo = alone(8, max);
        try (Engine e = new Engine(model, backend, EngineConfig.DEFAULT.withMaxNumSeqs(64).withMaxNumBatchedTokens(512))) {
            List<CompletableFuture<Out>> fs = new ArrayList<>();
            for (int i = 0; i < 64; i++) fs.add(submit(e, greedy(i, max)));
            for (int i = 0; i < 64; i++) assertArrayEquals(solo[i % 8], fs.get(i).join().tokens(), "request " + i + " of 64");
        }
    }

    @Test
    void preemptionByRecomputeKeepsOutputsExact() {
        int max = 40;
        int[][] solo = alone(8, max);
        // 12 blocks of 16 tokens: 8 sequences of ~45 tokens cannot all hold their blocks at once.
        long kvBytes = 12L * 16 * 2 * model.config().layers() * model.config().kvDim() * 4;
        try (Engine e = new Engine(model, backend, EngineConfig.DEFAULT.withKvCacheBytes(kvBytes).withPrefixCaching(false))) {
            List<CompletableFuture<Out>> fs = new ArrayList<>();
            for (int i = 0; i < 8; i++) fs.add(submit(e, greedy(i, max)));
            for (int i = 0; i < 8; i++) assertArrayEquals(solo[i], fs.get(i).join().tokens(), "request " + i);
            assertTrue(e.stats().preemptions() > 0, "the small cache should have forced preemption");
            waitIdle(e);
            assertEquals(0.0, e.stats().kvCacheUsage());
        }
    }

    @Test
    void cancellingFreesEveryBlock() throws Exception {
        try (Engine e = new Engine(model, backend, EngineConfig.DEFAULT)) {
            CountDownLatch started = new CountDownLatch(1);
            CompletableFuture<FinishReason> done = new CompletableFuture<>();
            RequestHandle h = e.submit(greedy(0, 400), new TokenListener() {
                public void onToken(TokenEvent t) { started.countDown(); }

                public void onFinish(FinishReason r, int p, int g, int c) { done.complete(r); }
            });
            assertTrue(started.await(30, TimeUnit.SECONDS));
            long end = System.nanoTime() + 5_000_000_000L;
            while (e.stats().kvCacheUsage() == 0 && System.nanoTime() < end) Thread.onSpinWait(); // stats follow each step
            assertTrue(e.stats().kvCacheUsage() > 0);
            h.cancel();
            assertEquals(FinishReason.CANCELLED, done.get(30, TimeUnit.SECONDS));
            waitIdle(e);
            assertEquals(0.0, e.stats().kvCacheUsage());
        }
    }

    @Test
    void aSharedPrefixIsServedFromTheCacheWithTheSameOutput() {
        String system = "You are a storyteller who writes short tales about animals that live in the forest near the river. ".repeat(3);
        int[] a = model.tokenizer().encode(system + "The fox", true), b = model.tokenizer().encode(system + "The bear", true);
        try (Engine e = new Engine(model, backend, EngineConfig.DEFAULT)) {
            int[] first = submit(e, new GenerationRequest(b, 16, SamplingParams.GREEDY, true, -1)).join().tokens();
            submit(e, new GenerationRequest(a, 16, SamplingParams.GREEDY, true, -1)).join();
            long hitsBefore = e.stats().prefixCacheHits();
            assertTrue(hitsBefore >= 16 * ((a.length - 8) / 16), "the second prompt reused the first one's blocks: " + hitsBefore);
            int[] again = submit(e, new GenerationRequest(b, 16, SamplingParams.GREEDY, true, -1)).join().tokens();
            assertArrayEquals(first, again);
        }
        try (Engine e = new Engine(model, backend, EngineConfig.DEFAULT.withPrefixCaching(false))) {
            assertArrayEquals(submit(e, new GenerationRequest(b, 16, SamplingParams.GREEDY, true, -1)).join().tokens(),
                    submit(e, new GenerationRequest(b, 16, SamplingParams.GREEDY, true, -1)).join().tokens());
        }
    }

    @Test
    void limitsAreCheckedAtSubmit() {
        try (Engine e = new Engine(model, backend, EngineConfig.DEFAULT.withMaxQueue(2))) {
            IllegalArgumentException tooLong = assertThrows(IllegalArgumentException.class, () -> e.submit(greedy(0, 600), null));
            assertTrue(tooLong.getMessage().contains("600") && tooLong.getMessage().contains("512"), tooLong.getMessage());
            List<CompletableFuture<Out>> fs = new ArrayList<>();
            boolean refused = false;
            for (int i = 0; i < 50 && !refused; i++) {
                try {
                    fs.add(submit(e, greedy(i, 200)));
                } catch (QueueFullException q) {
                    refused = true;
                }
            }
            assertTrue(refused, "a bounded queue refuses work");
        }
    }

    static void waitIdle(Engine e) {
        long end = System.nanoTime() + 10_000_000_000L;
        while ((e.stats().running() > 0 || e.stats().waiting() > 0) && System.nanoTime() < end) Thread.onSpinWait();
        try {
            Thread.sleep(100);
        } catch (InterruptedException ignored) {
        }
    }
}
