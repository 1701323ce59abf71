package dev.tandem.engine.handover;

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
import dev.tandem.engine.transport.InProcessKvTransport;
import dev.tandem.engine.transport.KvTransport;
import dev.tandem.engine.transport.TcpKvServer;
import dev.tandem.engine.transport.TcpKvTransport;
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
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Splitwise hand-over between two engines on the real 25M model: a prompt worker prefills (in chunks), samples the
 * first token and streams the KV layer by layer into blocks a token worker reserved; the token worker decodes on.
 * The tokens must be exactly those of one engine doing both.
 */
class HandoverTest {
    static final Path MODEL = Path.of(System.getProperty("tandem.shared", "../../shared"), "models", "gutenberg-stories-llama-25m");
    static final Duration DEADLINE = Duration.ofSeconds(30);
    static Model model;
    static CpuBackend promptBackend, tokenBackend;

    @BeforeAll
    static void load() {
        model = ModelLoader.load(MODEL, null);
        promptBackend = new CpuBackend(1);
        tokenBackend = new CpuBackend(1);
    }

    @AfterAll
    static void close() {
        promptBackend.close();
        tokenBackend.close();
        model.close();
    }

    static final String[] PROMPTS = {"Once upon a time", "The little dog", "Tom and Lily went to the park to play with their red ball and",
            "The old king had three daughters. The youngest was the most beautiful of all, and every morning she",
            "It was a cold winter night, and", "\"Where are you going?\" asked the"};

    static GenerationRequest request(int i, int max) {
        return new GenerationRequest(model.tokenizer().encode(PROMPTS[i % PROMPTS.length], true), max, SamplingParams.GREEDY, true, -1);
    }

    /** Prompt chunks of 16 tokens, so long prompts stream over several steps. */
    static final EngineConfig PROMPT = new EngineConfig(8, 16, 16L << 20, 16, 64, Role.PROMPT, false);
    static final EngineConfig TOKEN = new EngineConfig(16, 64, 16L << 20, 16, 64, Role.TOKEN, false);

    /** Collects one request's tokens from both workers, in arrival order. */
    static final class Collected {
        final List<Integer> tokens = Collections.synchronizedList(new ArrayList<>());
        final CompletableFuture<FinishReason> done = new CompletableFuture<>();
        final CompletableFuture<Throwable> promptSide = new CompletableFuture<>();
        volatile long firstTokenNanos;

        TokenListener promptListener() {
            return new TokenListener() {
                public void onToken(TokenEvent t) {
                    firstTokenNanos = System.nanoTime();
                    tokens.add(t.token());
                }

                public void onFinish(FinishReason r, int p, int g, int c) {
                    promptSide.complete(null);
                    if (r != FinishReason.HANDED_OVER) done.complete(r);
                }

                public void onError(Throwable t) { promptSide.complete(t); }
            };
        }

        TokenListener tokenListener() {
            return new TokenListener() {
                public void onToken(TokenEvent t) { tokens.add(t.token()); }

                public void onFinish(FinishReason r, int p, int g, int c) { done.complete(r); }

                public void onError(Throwable t) { done.completeExceptionally(t); }
            };
        }

        int[] await() throws Exception {
            done.get(60, TimeUnit.SECONDS);
            return tokens.stream().mapToInt(Integer::intValue).toArray();
        }
    }

    static int[][] colocated(int n, int max) throws Exception {
        int[][] out = new int[n][];
        try (Engine e = new Engine(model, tokenBackend, TOKEN.withMaxNumSeqs(16))) {
            e.setRole(Role.MIXED);
            for (int i = 0; i < n; i++) {
                Collected c = new Collected();
                e.submit(request(i, max), c.tokenListener());
                out[i] = c.await();
            }
        }
        return out;
    }

    static Collected split(Engine p, Engine t, KvTransport transport, String address, GenerationRequest r, Duration transferDeadline) {
        Collected c = new Collected();
        Reservation res = t.reserve(r, c.tokenListener(), DEADLINE);
        p.submit(r, c.promptListener(), new HandoverTarget(transport, address, res.id(), transferDeadline));
        return c;
    }

    @Test
    void splitWorkersGiveTheColocatedTokensInProcess() throws Exception {
        int n = PROMPTS.length, max = 20;
        int[][] expected = colocated(n, max);
        try (InProcessKvTransport transport = new InProcessKvTransport();
             Engine p = new Engine(model, promptBackend, PROMPT);
             Engine t = new Engine(model, tokenBackend, TOKEN)) {
            transport.register("token-0", t.kvReceiver());
            List<Collected> runs = new ArrayList<>();
            for (int i = 0; i < n; i++) runs.add(split(p, t, transport, "token-0", request(i, max), DEADLINE));
            for (int i = 0; i < n; i++) assertArrayEquals(expected[i], runs.get(i).await(), "prompt " + i);
            long prompt = 0;
            for (int i = 0; i < n; i++) prompt += request(i, max).promptTokens().length;
            assertTrue(transport.stats().bytesSent() >= prompt * model.config().layers() * 2L * model.config().kvDim() * Float.BYTES,
                    "every prompt position's keys and values of every layer were sent: " + transport.stats().bytesSent());
            assertEquals(n, transport.stats().handovers());
            assertEquals(t.load().totalBlocks(), waitFree(t), "the token worker freed every block");
            assertEquals(p.load().totalBlocks(), waitFree(p), "the prompt worker freed every block after the hand-overs");
        }
    }

    @Test
    void splitWorkersGiveTheColocatedTokensOverTcp() throws Exception {
        int n = PROMPTS.length, max = 12;
        int[][] expected = colocated(n, max);
        try (Engine p = new Engine(model, promptBackend, PROMPT);
             Engine t = new Engine(model, tokenBackend, TOKEN);
             TcpKvServer server = new TcpKvServer(t.kvReceiver(), "127.0.0.1", 0);
             TcpKvTransport transport = new TcpKvTransport(2000)) {
            String address = "127.0.0.1:" + server.port();
            List<Collected> runs = new ArrayList<>();
            for (int i = 0; i < n; i++) runs.add(split(p, t, transport, address, request(i, max), DEADLINE));
            for (int i = 0; i < n; i++) assertArrayEquals(expected[i], runs.get(i).await(), "prompt " + i);
            assertEquals(n, transport.stats().handovers());
            assertTrue(t.load().kvBytesReceived() > 0);
        }
    }

    @Test
    void aPromptFoundInThePromptWorkersPrefixCacheIsSentWhole() throws Exception {
        int max = 12;
        int[] expected = colocated(4, max)[3];
        try (InProcessKvTransport transport = new InProcessKvTransport();
             Engine p = new Engine(model, promptBackend, PROMPT.withPrefixCaching(true));
             Engine t = new Engine(model, tokenBackend, TOKEN)) {
            transport.register("token-0", t.kvReceiver());
            assertArrayEquals(expected, split(p, t, transport, "token-0", request(3, max), DEADLINE).await());
            assertArrayEquals(expected, split(p, t, transport, "token-0", request(3, max), DEADLINE).await(), "second run, prefix cached");
            assertTrue(p.stats().prefixCacheHits() > 0, "the second prefill found the prompt's first blocks cached");
        }
    }

    @Test
    void aTransferPastItsDeadlineIsRecomputedOnTheTokenWorker() throws Exception {
        int max = 10;
        int[] expected = colocated(4, max)[3];
        try (InProcessKvTransport transport = new InProcessKvTransport();
             Engine p = new Engine(model, promptBackend, PROMPT);
             Engine t = new Engine(model, tokenBackend, TOKEN)) {
            transport.register("token-0", t.kvReceiver());
            GenerationRequest r = request(3, max);
            Collected c = new Collected();
            Reservation res = t.reserve(r, c.tokenListener(), DEADLINE);
            p.submit(r, c.promptListener(), new HandoverTarget(transport, "token-0", res.id(), Duration.ZERO));
            Throwable failure = c.promptSide.get(30, TimeUnit.SECONDS);
            assertInstanceOf(KvTransferException.class, failure, "the prompt worker reports the failed transfer");
            assertEquals(1, c.tokens.size(), "the first token went out before the hand-over");
            int[] sent = new int[r.promptTokens().length + 1];
            System.arraycopy(r.promptTokens(), 0, sent, 0, r.promptTokens().length);
            sent[sent.length - 1] = c.tokens.getFirst();
            res.recompute(sent);
            assertArrayEquals(expected, c.await());
            assertEquals(1, transport.stats().failures());
        }
    }

    @Test
    void aSeededSampledRequestContinuesItsRandomDrawsOnTheTokenWorker() throws Exception {
        SamplingParams sampled = new SamplingParams(0.9f, 40, 0.95f, 0f, 1f, 64, 0f, 0f, 1234);
        GenerationRequest r = new GenerationRequest(request(2, 1).promptTokens(), 24, sampled, true, -1);
        int[] expected;
        try (Engine e = new Engine(model, tokenBackend, TOKEN)) {
            e.setRole(Role.MIXED);
            Collected c = new Collected();
            e.submit(r, c.tokenListener());
            expected = c.await();
        }
        try (InProcessKvTransport transport = new InProcessKvTransport();
             Engine p = new Engine(model, promptBackend, PROMPT);
             Engine t = new Engine(model, tokenBackend, TOKEN)) {
            transport.register("token-0", t.kvReceiver());
            assertArrayEquals(expected, split(p, t, transport, "token-0", r, DEADLINE).await());
        }
    }

    @Test
    void aReceiverThatStopsReadingFailsTheTcpTransferAtItsDeadlineInsteadOfHangingIt() throws Exception {
        // A peer that accepts and never reads, with a tiny receive buffer: the sender's writes block once the
        // socket buffers are full, and the watchdog must cut them at the deadline.
        try (java.net.ServerSocket silent = new java.net.ServerSocket()) {
            silent.setReceiveBufferSize(4096);
            silent.bind(new java.net.InetSocketAddress("127.0.0.1", 0));
            Thread acceptor = Thread.ofVirtual().start(() -> {
                try {
                    java.net.Socket s = silent.accept();
                    Thread.sleep(60_000);
                    s.close();
                } catch (Exception ignored) {
                    // closed at the end of the test
                }
            });
            StringBuilder text = new StringBuilder();
            while (model.tokenizer().encode(text.toString(), true).length < 480) text.append(PROMPTS[3]).append(' ');
            int[] prompt = java.util.Arrays.copyOf(model.tokenizer().encode(text.toString(), true), 480);
            try (TcpKvTransport transport = new TcpKvTransport(2000);
                 Engine p = new Engine(model, promptBackend, PROMPT.withMaxNumBatchedTokens(512))) {
                Collected c = new Collected();
                p.submit(new GenerationRequest(prompt, 4, SamplingParams.GREEDY, true, -1), c.promptListener(),
                        new HandoverTarget(transport, "127.0.0.1:" + silent.getLocalPort(), 1, Duration.ofMillis(1500)));
                Throwable failure = c.promptSide.get(30, TimeUnit.SECONDS);
                assertInstanceOf(KvTransferException.class, failure, "the transfer failed");
                // Known when the prefill ends (the commit's turn), not after a socket timeout: without the deadline the
                // blocked write would hang this test's 30 s wait.
                double afterFirstToken = (System.nanoTime() - c.firstTokenNanos) / 1e9;
                assertTrue(afterFirstToken < 5, "detected, not waited on: " + afterFirstToken + " s after the first token");
                assertEquals(1, transport.stats().failures());
                assertEquals(p.load().totalBlocks(), waitFree(p), "the prompt worker freed the sequence's blocks");
            }
            acceptor.interrupt();
        }
    }

    @Test
    void aReservationWithoutHandoverIsDroppedAtItsDeadline() throws Exception {
        try (Engine t = new Engine(model, tokenBackend, TOKEN)) {
            int total = t.load().totalBlocks();
            Collected c = new Collected();
            t.reserve(request(3, 8), c.tokenListener(), Duration.ofMillis(100));
            Throwable e = assertThrows(Exception.class, () -> c.done.get(10, TimeUnit.SECONDS)).getCause();
            assertInstanceOf(KvTransferException.class, e);
            assertEquals(total, waitFree(t));
        }
    }

    @Test
    void rolesRefuseWorkOfTheOtherPhase() {
        try (Engine p = new Engine(model, promptBackend, PROMPT); Engine t = new Engine(model, tokenBackend, TOKEN)) {
            assertTrue(assertThrows(IllegalStateException.class, () -> p.submit(request(0, 4), new Collected().tokenListener()))
                    .getMessage().contains("prompt worker"));
            assertThrows(IllegalStateException.class, () -> p.reserve(request(0, 4), new Collected().tokenListener(), DEADLINE));
            InProcessKvTransport transport = new InProcessKvTransport();
            assertThrows(IllegalStateException.class, () -> t.submit(request(0, 4), new Collected().promptListener(),
                    new HandoverTarget(transport, "x", 1, DEADLINE)));
        }
    }

    /**
     * What a device transport sees of a reservation: the physical ids of the blocks it asked for, in the sequence's
     * order; a range outside the reservation is an error naming it; once the reservation stopped waiting, nothing.
     * A path that cannot be opened leaves no queue slot taken.
     */
    @Test
    void aDeviceTransportGetsTheReservedBlocksInOrderWhileTheReservationWaits() throws Exception {
        try (Engine t = new Engine(model, tokenBackend, TOKEN); Engine p = new Engine(model, promptBackend, PROMPT)) {
            GenerationRequest r = request(3, 8); // 22 prompt tokens: 2 blocks
            Collected c = new Collected();
            Reservation res = t.reserve(r, c.tokenListener(), DEADLINE);
            int free = t.load().totalBlocks() - 2;
            List<int[]> seen = new ArrayList<>();
            assertTrue(t.kvReceiver().writeBlocks(res.id(), 3, 0, 2, 4096, b -> seen.add(b.clone())));
            assertEquals(1, seen.size());
            assertEquals(2, seen.get(0).length);
            assertTrue(seen.get(0)[0] != seen.get(0)[1], "two distinct blocks");
            int[] second = new int[1];
            assertTrue(t.kvReceiver().writeBlocks(res.id(), 0, 1, 1, 2048, b -> second[0] = b[0]));
            assertEquals(seen.get(0)[1], second[0], "block 1 of the sequence alone is the same physical block");
            java.io.IOException out = assertThrows(java.io.IOException.class, () -> t.kvReceiver().writeBlocks(res.id(), 0, 1, 2, 64, b -> {}));
            assertTrue(out.getMessage().contains("outside reservation " + res.id()), out.getMessage());
            Thread.sleep(50);
            assertEquals(free, t.load().freeBlocks());
            assertEquals(4096 + 2048, t.load().kvBytesReceived(), "bytes the transport reported are counted");
            res.cancel();
            assertTrue(!t.kvReceiver().writeBlocks(res.id(), 0, 0, 1, 64, b -> { throw new AssertionError("written after cancel"); }));
            InProcessKvTransport transport = new InProcessKvTransport();
            for (int i = 0; i < 3 * TOKEN.maxQueue(); i++) {
                assertThrows(IllegalArgumentException.class, () -> p.submit(request(0, 4), new Collected().promptListener(),
                        new HandoverTarget(transport, "nobody", 1, DEADLINE)));
            }
            assertEquals(0, p.stats().waiting(), "refused hand-overs took no queue slot");
        }
    }

    /** Free blocks once the engine has settled (releases happen on its loop). */
    static int waitFree(Engine e) throws InterruptedException {
        long end = System.nanoTime() + 10_000_000_000L;
        while (System.nanoTime() < end && e.load().freeBlocks() != e.load().totalBlocks()) Thread.sleep(10);
        return e.load().freeBlocks();
    }
}
