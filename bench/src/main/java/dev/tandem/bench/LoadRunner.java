package dev.tandem.bench;

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;

/**
 * Sends a planned schedule open-loop: each request goes out at its own time on its own virtual thread, whatever
 * the server's state, unless a concurrency cap is set. Prompts are built ahead on a platform thread into a
 * bounded queue, so tokenizing a long prompt does not delay the send of the one before it; the clock starts
 * once the queue is primed.
 */
public final class LoadRunner {
    private static final int LOOKAHEAD = 256;

    private final StreamingClient client;
    private final String model;
    private final PromptSynthesizer prompts;
    private final long seed; // of the prompts
    private final int concurrency;
    private final double durationS;

    /**
     * @param seed        of the prompts' words (each request's prompt has a seed of its own, derived from this)
     * @param concurrency most requests in flight, 0 for no cap
     * @param durationS   no request is sent after this many seconds of run, 0 for no limit (the plan already
     *                    stops there; this also holds when a concurrency cap makes sends fall behind the plan)
     */
    public LoadRunner(StreamingClient client, String model, PromptSynthesizer prompts, long seed, int concurrency, double durationS) {
        this.client = client;
        this.model = model;
        this.prompts = prompts;
        this.seed = seed;
        this.concurrency = concurrency;
        this.durationS = durationS;
    }

    /** The seed of request {@code index}'s prompt; baseline requests use negative indices, so no two share one. */
    static long promptSeed(long seed, long index) {
        return seed * 0x9E3779B97F4A7C15L + index;
    }

    private record Prepared(PlannedRequest plan, int promptTokens, String prompt) {}

    private static final Prepared END = new Prepared(null, 0, null);

    /** Runs the whole schedule and waits for every request; one record per planned request, in plan order. */
    public List<RequestRecord> run(List<PlannedRequest> plan, LiveCounters counters, Supplier<AutoCloseable> progress) {
        BlockingQueue<Prepared> queue = new ArrayBlockingQueue<>(LOOKAHEAD);
        CountDownLatch primed = new CountDownLatch(1);
        AtomicReference<RuntimeException> producerError = new AtomicReference<>();
        Thread producer = Thread.ofPlatform().daemon().name("bench-prompts").start(() -> {
            try {
                for (PlannedRequest p : plan) {
                    int n = Math.max(p.promptTokens(), prompts.minimumTokens());
                    queue.put(new Prepared(p, n, prompts.synthesize(n, promptSeed(seed, p.index()))));
                    if (queue.remainingCapacity() == 0) primed.countDown();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (RuntimeException e) {
                producerError.set(e);
            } finally {
                primed.countDown();
                try {
                    queue.put(END);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        });
        RequestRecord[] records = new RequestRecord[plan.size()];
        Semaphore cap = concurrency > 0 ? new Semaphore(concurrency) : null;
        try {
            primed.await();
            long start = System.nanoTime();
            long stop = start + (long) (durationS * 1e9);
            counters.startNanos = start;
            try (AutoCloseable bar = progress.get(); ExecutorService requests = Executors.newVirtualThreadPerTaskExecutor()) {
                for (Prepared p; (p = queue.take()) != END; ) {
                    sleepUntil(start + (long) (p.plan().offsetS() * 1e9));
                    if (cap != null) cap.acquire();
                    if (durationS > 0 && System.nanoTime() - stop >= 0) {
                        if (cap != null) cap.release();
                        break;
                    }
                    counters.issued.incrementAndGet();
                    Prepared request = p;
                    requests.submit(() -> send(request, start, counters, cap, records));
                }
            } // closing the executor waits for every request in flight, then the bar draws its last line
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BenchException("interrupted");
        } catch (Exception e) {
            if (e instanceof RuntimeException r) throw r;
            throw new IllegalStateException(e);
        } finally {
            producer.interrupt();
        }
        if (producerError.get() != null) throw producerError.get();
        return Arrays.asList(records).subList(0, counters.issued.get());
    }

    private void send(Prepared p, long start, LiveCounters counters, Semaphore cap, RequestRecord[] records) {
        Completion c;
        long sent = System.nanoTime();
        try {
            c = client.complete(model, p.prompt(), p.plan().outputTokens(), counters.chunks::increment);
        } catch (RuntimeException | Error e) {
            // A bug here must still show up as a failed request, not as a request that silently vanished.
            c = new Completion(0, "internal error: " + e, sent, System.nanoTime(), new long[0], -1, -1, null);
        }
        records[p.plan().index()] = RequestRecord.of(p.plan(), p.promptTokens(), c, start);
        if (!c.ok()) counters.failed.incrementAndGet();
        counters.done.incrementAndGet();
        if (cap != null) cap.release();
    }

    private static void sleepUntil(long nanos) throws InterruptedException {
        for (long left; (left = nanos - System.nanoTime()) > 0; ) {
            LockSupport.parkNanos(left);
            if (Thread.interrupted()) throw new InterruptedException();
        }
    }

    /** Sends requests strictly one after another (the unloaded baseline): nothing else is in flight. */
    public List<RequestRecord> sequential(int count, int promptTokens, int outputTokens, long firstSeedIndex) {
        long start = System.nanoTime();
        RequestRecord[] out = new RequestRecord[count];
        for (int i = 0; i < count; i++) {
            int n = Math.max(promptTokens, prompts.minimumTokens());
            String prompt = prompts.synthesize(n, promptSeed(seed, firstSeedIndex - i));
            PlannedRequest p = new PlannedRequest(i, (System.nanoTime() - start) / 1e9, n, outputTokens, 0);
            out[i] = RequestRecord.of(p, n, client.complete(model, prompt, outputTokens, () -> {}), start);
        }
        return List.of(out);
    }
}
