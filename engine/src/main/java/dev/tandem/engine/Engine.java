package dev.tandem.engine;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.tokenizer.Tokenizer;
import dev.tandem.engine.exec.ModelRunner;
import dev.tandem.engine.kv.KvCacheManager;
import dev.tandem.engine.sched.Scheduler;
import dev.tandem.engine.sched.Sequence;
import dev.tandem.engine.spec.Draft;
import dev.tandem.engine.spec.SpecDecodeStats;
import dev.tandem.engine.spec.SpeculativeConfig;
import dev.tandem.engine.spec.Speculator;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * One worker: a single engine-loop thread that repeats schedule → one batched forward pass → update.
 * Other threads only enqueue requests and cancellations, so they never block the loop and the loop never
 * waits for them; results go out through each request's {@link TokenListener}.
 */
public final class Engine implements AutoCloseable {
    private final Model model;
    private final EngineConfig config;
    private final KvCacheManager kv;
    private final Scheduler scheduler;
    private final ModelRunner runner;
    /** Speculative decoding, or null when off. */
    private final Speculator speculator;
    private final Thread loop;
    private final ConcurrentLinkedQueue<Sequence> inbox = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<Sequence> cancels = new ConcurrentLinkedQueue<>();
    private final AtomicInteger pending = new AtomicInteger();
    private final AtomicLong ids = new AtomicLong();
    private volatile boolean accepting = true;
    private volatile boolean stopped;
    private volatile EngineStats stats;
    private long promptTokens, generationTokens, steps;

    public Engine(Model model, Backend backend, EngineConfig config) { this(model, backend, config, null); }

    /** An engine that speculates with {@code speculative} (null: off); requests may still opt out one by one. */
    public Engine(Model model, Backend backend, EngineConfig config, SpeculativeConfig speculative) {
        this.model = model;
        this.config = config;
        ModelConfig c = model.config();
        long perBlock = ModelRunner.kvBytesPerToken(c) * config.blockSize();
        int numBlocks = (int) Math.min(Integer.MAX_VALUE, config.kvCacheBytes() / perBlock);
        if (numBlocks < 1) {
            throw new IllegalArgumentException("kv-cache-memory of " + config.kvCacheBytes() + " bytes holds no block of " + perBlock + " bytes");
        }
        this.kv = new KvCacheManager(numBlocks, config.blockSize(), config.prefixCaching());
        this.scheduler = new Scheduler(config, kv);
        this.speculator = speculative == null ? null
                : Speculator.create(speculative, c, backend, numBlocks, config.blockSize(), config.maxNumBatchedTokens(), config.maxNumSeqs());
        // Logits rows: one per sequence, plus one per draft token when speculating (never more than the step's tokens).
        int logitRows = speculator == null ? config.maxNumSeqs()
                : (int) Math.min(config.maxNumBatchedTokens(), (long) config.maxNumSeqs() * (1 + speculator.maxSpeculativeTokens()));
        this.runner = new ModelRunner(c, model.weights(), backend, kv, config.maxNumBatchedTokens(), Math.max(config.maxNumSeqs(), logitRows));
        if (speculator != null) scheduler.setLookahead(seq -> speculator.lookahead(seq, contextLength(), scheduler.numRunning()));
        this.stats = snapshot();
        this.loop = Thread.ofPlatform().name("tandem-engine").daemon().unstarted(this::run);
        loop.start();
    }

    public Model model() { return model; }

    public Tokenizer tokenizer() { return model.tokenizer(); }

    public EngineConfig config() { return config; }

    public int contextLength() { return model.config().contextLength(); }

    public EngineStats stats() { return stats; }

    /** Speculative decoding's state (drafter, counters), or null when this engine does not speculate. */
    public Speculator speculator() { return speculator; }

    /**
     * Queues a request. Throws IllegalArgumentException when it can never fit (context or KV cache), and
     * QueueFullException when the waiting queue is at its bound.
     */
    public RequestHandle submit(GenerationRequest request, TokenListener listener) {
        if (!accepting) throw new IllegalStateException("the engine is shutting down");
        int total = request.promptTokens().length + request.maxTokens();
        if (total > contextLength()) {
            throw new IllegalArgumentException("the prompt (" + request.promptTokens().length + " tokens) plus max_tokens ("
                    + request.maxTokens() + ") is " + total + " tokens, over the model's context of " + contextLength());
        }
        if (kv.blocksFor(total) > kv.numBlocks()) {
            throw new IllegalArgumentException("the request needs " + kv.blocksFor(total) + " KV blocks; the cache has " + kv.numBlocks()
                    + " (raise --kv-cache-memory)");
        }
        for (int t : request.promptTokens()) {
            if (t < 0 || t >= model.config().vocabSize()) throw new IllegalArgumentException("token id " + t + " outside the vocabulary of " + model.config().vocabSize());
        }
        if (pending.incrementAndGet() > config.maxQueue()) {
            pending.decrementAndGet();
            throw new QueueFullException(config.maxQueue());
        }
        Sequence seq = new Sequence(ids.incrementAndGet(), request, listener);
        inbox.add(seq);
        LockSupport.unpark(loop);
        return new RequestHandle() {
            public long id() { return seq.id(); }

            public void cancel() {
                if (!seq.cancelRequested()) {
                    seq.requestCancel();
                    cancels.add(seq);
                    LockSupport.unpark(loop);
                }
            }
        };
    }

    private void run() {
        while (!stopped) {
            try {
                boolean worked = step();
                if (!worked) LockSupport.parkNanos(this, 50_000_000);
            } catch (Throwable t) {
                failAll(t);
            }
        }
        failAll(new IllegalStateException("the engine stopped"));
    }

    /** One iteration of the loop; false when there was nothing to do. */
    private boolean step() {
        Sequence s;
        while ((s = inbox.poll()) != null) {
            if (s.cancelRequested()) {
                if (s.markAdmitted()) pending.decrementAndGet();
                finish(s, FinishReason.CANCELLED);
            } else {
                scheduler.add(s);
            }
        }
        while ((s = cancels.poll()) != null) {
            if (s.state() != Sequence.State.FINISHED && (scheduler.running().contains(s) || scheduler.waiting().contains(s))) {
                if (s.markAdmitted()) pending.decrementAndGet();
                scheduler.remove(s);
                finish(s, FinishReason.CANCELLED);
            }
        }
        List<Scheduler.Scheduled> work = scheduler.schedule();
        if (work.isEmpty()) {
            stats = snapshot();
            return false;
        }
        for (Scheduler.Scheduled w : work) {
            // A request counts against the queue bound until it first runs.
            if (w.seq().markAdmitted()) pending.decrementAndGet();
            promptTokens += Math.max(0, Math.min(w.count(), w.seq().promptLength() - w.start()));
        }
        List<Draft> drafts = speculator == null ? null : speculator.propose(work);
        long t0 = System.nanoTime();
        List<ModelRunner.Sampled> sampled = runner.execute(work, drafts);
        steps++;
        if (speculator != null) {
            long nanos = System.nanoTime() - t0;
            int tokens = 0;
            boolean drafted = false;
            for (int i = 0; i < work.size(); i++) {
                tokens += work.get(i).count() + drafts.get(i).size();
                drafted |= drafts.get(i).size() > 0;
            }
            speculator.observeStep(tokens, nanos);
            if (drafted) speculator.verifiedStep(nanos);
        }
        int j = 0;
        for (ModelRunner.Sampled r : sampled) {
            Sequence seq = r.seq();
            if (r.drafted() > 0) {
                while (work.get(j).seq() != seq) j++;
                speculator.verified(seq, seq.numTokens(), drafts.get(j), r.accepted());
            }
            for (TokenEvent event : r.events()) {
                int token = event.token();
                boolean eos = token == model.config().eos() || token == model.tokenizer().eos();
                if (eos && !seq.request().ignoreEos()) {
                    scheduler.remove(seq);
                    finish(seq, FinishReason.STOP);
                    break;
                }
                seq.append(token);
                generationTokens++;
                seq.listener().onToken(event);
                if (seq.cancelRequested()) break; // removed at the next step's cancellation pass
                if (seq.generated() >= seq.request().maxTokens() || seq.numTokens() >= contextLength()) {
                    scheduler.remove(seq);
                    finish(seq, FinishReason.LENGTH);
                    break;
                }
            }
        }
        stats = snapshot();
        return true;
    }

    private void finish(Sequence seq, FinishReason reason) {
        seq.finish(reason);
        if (speculator != null) speculator.release(seq);
        try {
            seq.listener().onFinish(reason, seq.promptLength(), seq.generated(), seq.cachedPromptTokens());
        } catch (RuntimeException e) {
            // A listener's failure must not take the engine (and every other request) down.
        }
    }

    private void failAll(Throwable t) {
        List<Sequence> all = new ArrayList<>(scheduler.running());
        all.addAll(scheduler.waiting());
        Sequence s;
        while ((s = inbox.poll()) != null) all.add(s);
        for (Sequence seq : all) {
            scheduler.remove(seq);
            seq.finish(FinishReason.ABORTED);
            if (speculator != null) speculator.release(seq);
            try {
                seq.listener().onError(t);
            } catch (RuntimeException ignored) {
                // see finish()
            }
        }
        pending.set(0);
    }

    private EngineStats snapshot() {
        return new EngineStats(scheduler.numRunning(), scheduler.numWaiting() + inbox.size(), kv.usage(), kv.numBlocks(), kv.freeBlocks(),
                promptTokens, generationTokens, scheduler.preemptions(), kv.prefixQueries(), kv.prefixHits(), steps,
                speculator == null ? SpecDecodeStats.OFF : speculator.stats());
    }

    /** Stops accepting requests, lets running ones finish until the deadline, then cancels the rest. */
    public void shutdown(Duration grace) {
        accepting = false;
        long deadline = System.nanoTime() + grace.toNanos();
        while (System.nanoTime() < deadline && (stats.running() > 0 || stats.waiting() > 0 || !inbox.isEmpty())) {
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        close();
    }

    @Override
    public void close() {
        accepting = false;
        stopped = true;
        LockSupport.unpark(loop);
        try {
            loop.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (speculator != null && !loop.isAlive()) speculator.close();
    }
}
