package dev.tandem.engine;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.tokenizer.Tokenizer;
import dev.tandem.engine.exec.ModelRunner;
import dev.tandem.engine.handover.HandoverTarget;
import dev.tandem.engine.handover.KvTransferException;
import dev.tandem.engine.handover.Reservation;
import dev.tandem.engine.handover.Reservations;
import dev.tandem.engine.kv.KvCacheManager;
import dev.tandem.engine.sched.Scheduler;
import dev.tandem.engine.sched.Sequence;
import dev.tandem.engine.transport.KvReceiver;
import dev.tandem.engine.spec.Draft;
import dev.tandem.engine.spec.SpecDecodeStats;
import dev.tandem.engine.spec.SpeculativeConfig;
import dev.tandem.engine.spec.Speculator;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * One worker: a single engine-loop thread that repeats schedule → one batched forward pass → update.
 * Other threads only enqueue requests and cancellations, so they never block the loop and the loop never
 * waits for them; results go out through each request's {@link TokenListener}.
 *
 * <p>Splitwise roles: a PROMPT worker runs requests that carry a {@link HandoverTarget}; after the first token it
 * streams the sequence to a token worker (each layer's KV already left during the prefill). A TOKEN worker
 * {@linkplain #reserve reserves} blocks for such sequences and decodes them once they arrive. MIXED does both and
 * runs whole requests. The role can change at run time (Splitwise's mixed pool).
 */
public final class Engine implements GenerationService {
    private final Model model;
    private final EngineConfig config;
    private final KvCacheManager kv;
    private final Scheduler scheduler;
    private final ModelRunner runner;
    private final StepLog stepLog; // null unless -Dtandem.stepLog=SECONDS
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
    private volatile EngineLoad load;
    private volatile Role role;
    private long promptTokens, generationTokens, steps;
    private final Reservations reservations;
    private final ConcurrentLinkedQueue<Reservations.Outcome> arrivals = new ConcurrentLinkedQueue<>();
    /** Sequences whose hand-over is being sent: out of the batch, blocks still held. */
    private final Set<Sequence> handingOver = new HashSet<>();
    private record Sent(Sequence seq, Throwable failure) {}
    private final ConcurrentLinkedQueue<Sent> sent = new ConcurrentLinkedQueue<>();

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
        this.role = config.role();
        this.stepLog = StepLog.fromProperty("engine " + config.role().name().toLowerCase(java.util.Locale.ROOT) + " on " + backend.name());
        this.reservations = new Reservations(runner.kvStorage(), o -> {
            arrivals.add(o);
            LockSupport.unpark(loop());
        });
        this.stats = snapshot();
        this.loop = Thread.ofPlatform().name("tandem-engine").daemon().unstarted(this::run);
        loop.start();
    }

    public Model model() { return model; }

    @Override
    public Tokenizer tokenizer() { return model.tokenizer(); }

    public EngineConfig config() { return config; }

    @Override
    public int contextLength() { return model.config().contextLength(); }

    public EngineStats stats() { return stats; }

    /** Routing inputs as of the last step. */
    public EngineLoad load() { return load; }

    public Role role() { return role; }

    /** Moves the worker to another pool; requests already accepted finish as they started. */
    public void setRole(Role role) { this.role = role; }

    /** Whether the KV cache is in host memory (the CPU backends): the in-process and TCP transports carry it; a device cache needs a device transport. */
    public boolean kvInHostMemory() { return kvStorage() instanceof dev.tandem.core.backend.cpu.CpuKvStorage; }

    /** The KV cache's memory: a device transport sends from it and writes reservations into it. */
    public dev.tandem.core.backend.KvStorage kvStorage() { return runner.kvStorage(); }

    /** Where transports deliver hand-overs to this worker. */
    public KvReceiver kvReceiver() {
        return reservations;
    }

    private Thread loop() { return loop; }

    /** Speculative decoding's state (drafter, counters), or null when this engine does not speculate. */
    public Speculator speculator() { return speculator; }

    /**
     * Queues a request. Throws IllegalArgumentException when it can never fit (context or KV cache), and
     * QueueFullException when the waiting queue is at its bound.
     */
    @Override
    public RequestHandle submit(GenerationRequest request, TokenListener listener) {
        if (role == Role.PROMPT) {
            throw new IllegalStateException("this is a prompt worker: it only runs prefills that hand over to a token worker (submit through the router)");
        }
        return submit(request, listener, null);
    }

    /**
     * Queues a request whose sequence goes to {@code handover} after its first token (a prompt worker's work);
     * null runs it whole here. The first token reaches {@code listener}, then {@link FinishReason#HANDED_OVER} once
     * the sequence left, or onError with a {@link KvTransferException} when the transfer failed.
     */
    public RequestHandle submit(GenerationRequest request, TokenListener listener, HandoverTarget handover) {
        if (!accepting) throw new IllegalStateException("the engine is shutting down");
        if (handover != null && role == Role.TOKEN) {
            throw new IllegalStateException("this is a token worker: it does not run prefills for other workers");
        }
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
        if (handover != null) {
            try {
                seq.setHandover(handover.transport().open(handover.address(), handover.reservation(), runner.kvStorage(),
                        System.nanoTime() + handover.timeout().toNanos()));
            } catch (RuntimeException e) {
                pending.decrementAndGet(); // the request never queued (no path to the token worker)
                throw e;
            }
        }
        inbox.add(seq);
        LockSupport.unpark(loop);
        return handle(seq);
    }

    /**
     * A token worker's side of a hand-over: reserves the blocks of the request's prompt now, before the prompt
     * worker starts, so that the KV has somewhere to land. The sequence joins the decode batch when the
     * transport commits it (or the router orders a {@linkplain Reservation#recompute recompute}); tokens from the
     * second on go to {@code listener}. Nothing arriving within {@code timeout} drops the reservation (onError).
     * Throws IllegalStateException when the blocks are not free now.
     */
    public Reservation reserve(GenerationRequest request, TokenListener listener, Duration timeout) {
        if (!accepting) throw new IllegalStateException("the engine is shutting down");
        if (role == Role.PROMPT) throw new IllegalStateException("this is a prompt worker: it does not take hand-overs");
        kvReceiver();
        int total = request.promptTokens().length + request.maxTokens();
        if (total > contextLength()) {
            throw new IllegalArgumentException("the prompt (" + request.promptTokens().length + " tokens) plus max_tokens ("
                    + request.maxTokens() + ") is " + total + " tokens, over the model's context of " + contextLength());
        }
        Sequence seq = new Sequence(ids.incrementAndGet(), request, listener);
        seq.markAdmitted();
        if (!kv.allocate(seq, request.promptTokens().length)) {
            throw new IllegalStateException("no room for a hand-over of " + request.promptTokens().length + " prompt tokens: "
                    + kv.freeBlocks() + " KV blocks free, " + kv.blocksFor(request.promptTokens().length) + " needed");
        }
        reservations.add(seq, System.nanoTime() + timeout.toNanos());
        RequestHandle h = handle(seq);
        return new Reservation() {
            public long id() { return seq.id(); }

            public void recompute(int[] tokens) { reservations.recompute(seq.id(), tokens); }

            public void cancel() {
                reservations.abort(seq.id(), "cancelled");
                h.cancel();
            }
        };
    }

    private RequestHandle handle(Sequence seq) {
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
        boolean moved = settleHandovers();
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
            return moved;
        }
        long stepPrompt = 0;
        int stepDecodes = 0;
        for (Scheduler.Scheduled w : work) {
            // A request counts against the queue bound until it first runs.
            if (w.seq().markAdmitted()) {
                pending.decrementAndGet();
                w.seq().listener().onScheduled();
            }
            long p = Math.max(0, Math.min(w.count(), w.seq().promptLength() - w.start()));
            promptTokens += p;
            stepPrompt += p;
            if (p == 0) stepDecodes++;
        }
        List<Draft> drafts = speculator == null ? null : speculator.propose(work);
        long t0 = System.nanoTime();
        List<ModelRunner.Sampled> sampled = runner.execute(work, drafts);
        steps++;
        if (stepLog != null) stepLog.step(stepPrompt, stepDecodes, System.nanoTime() - t0, runner.lastForwardCallNanos());
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
            boolean ended = false;
            for (TokenEvent event : r.events()) {
                int token = event.token();
                boolean eos = token == model.config().eos() || token == model.tokenizer().eos();
                if (eos && !seq.request().ignoreEos()) {
                    scheduler.remove(seq);
                    finish(seq, FinishReason.STOP);
                    ended = true;
                    break;
                }
                seq.append(token);
                generationTokens++;
                seq.listener().onToken(event);
                if (seq.cancelRequested()) { // removed at the next step's cancellation pass
                    ended = true;
                    break;
                }
                if (seq.generated() >= seq.request().maxTokens() || seq.numTokens() >= contextLength()) {
                    scheduler.remove(seq);
                    finish(seq, FinishReason.LENGTH);
                    ended = true;
                    break;
                }
            }
            if (!ended && seq.handover() != null) handOver(seq);
        }
        stats = snapshot();
        return true;
    }

    /** Prompt side: the first token is out; the sequence leaves once its commit followed the layers' blocks. */
    private void handOver(Sequence seq) {
        scheduler.detach(seq);
        handingOver.add(seq);
        seq.handover().commit(Arrays.copyOf(seq.tokens(), seq.numTokens()), failure -> {
            sent.add(new Sent(seq, failure));
            LockSupport.unpark(loop);
        });
    }

    /** Applies what happened to hand-overs since the last step; true if anything did. */
    private boolean settleHandovers() {
        boolean any = false;
        Sent out;
        while ((out = sent.poll()) != null) {
            any = true;
            if (!handingOver.remove(out.seq())) continue;
            kv.release(out.seq());
            if (out.failure() == null) {
                finish(out.seq(), FinishReason.HANDED_OVER);
            } else {
                out.seq().finish(FinishReason.ABORTED);
                fail(out.seq(), new KvTransferException("KV hand-over of request " + out.seq().id() + " failed: " + out.failure().getMessage(), out.failure()));
            }
        }
        reservations.expire(System.nanoTime());
        Reservations.Outcome o;
        while ((o = arrivals.poll()) != null) {
            any = true;
            Sequence seq = o.seq();
            switch (o) {
                case Reservations.Drop d -> {
                    kv.release(seq);
                    if (d.cancelled()) finish(seq, FinishReason.CANCELLED);
                    else {
                        seq.finish(FinishReason.ABORTED);
                        fail(seq, new KvTransferException(d.reason(), null));
                    }
                }
                case Reservations.Adopt a -> adopt(seq, a.tokens(), a.recompute());
            }
        }
        return any;
    }

    /** Token side: the handed-over sequence joins the batch; its KV is here unless it must be recomputed. */
    private void adopt(Sequence seq, int[] tokens, boolean recompute) {
        int p = seq.promptLength();
        if (tokens.length <= p || !Arrays.equals(tokens, 0, p, seq.tokens(), 0, p)) {
            kv.release(seq);
            seq.finish(FinishReason.ABORTED);
            fail(seq, new KvTransferException("hand-over of request " + seq.id() + " carried " + tokens.length
                    + " tokens that do not extend its reserved prompt of " + p, null));
            return;
        }
        if (seq.cancelRequested()) {
            kv.release(seq);
            finish(seq, FinishReason.CANCELLED);
            return;
        }
        for (int i = p; i < tokens.length; i++) seq.append(tokens[i]);
        seq.sampler().skip(seq.generated()); // continue the random draws where the prompt worker left them
        if (recompute) {
            seq.setNumComputed(0);
        } else {
            seq.setNumComputed(seq.numTokens() - 1);
            kv.registerFullBlocks(seq, seq.numComputed());
        }
        scheduler.add(seq);
    }

    private void fail(Sequence seq, Throwable t) {
        try {
            seq.listener().onError(t);
        } catch (RuntimeException ignored) {
            // see finish()
        }
    }

    private void finish(Sequence seq, FinishReason reason) {
        if (seq.handover() != null && reason != FinishReason.HANDED_OVER) seq.handover().abort("the request ended on the prompt worker: " + reason);
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
        all.addAll(handingOver);
        all.addAll(reservations.closeAll());
        for (Sequence seq : all) {
            scheduler.remove(seq);
            if (seq.handover() != null) seq.handover().abort("the prompt worker stopped");
            seq.finish(FinishReason.ABORTED);
            if (speculator != null) speculator.release(seq);
            try {
                seq.listener().onError(t);
            } catch (RuntimeException ignored) {
                // see finish()
            }
        }
        handingOver.clear();
        pending.set(0);
    }

    private EngineStats snapshot() {
        long pendingPrompt = 0;
        for (Sequence seq : scheduler.waiting()) pendingPrompt += Math.max(0, seq.promptLength() - seq.numComputed());
        for (Sequence seq : scheduler.running()) pendingPrompt += Math.max(0, seq.promptLength() - seq.numComputed());
        for (Sequence seq : inbox) pendingPrompt += seq.promptLength();
        load = new EngineLoad(role, pendingPrompt, scheduler.numRunning(), scheduler.numWaiting() + inbox.size(),
                reservations.size(), kv.freeBlocks(), kv.numBlocks(), reservations.bytesReceived());
        return new EngineStats(scheduler.numRunning(), scheduler.numWaiting() + inbox.size(), kv.usage(), kv.numBlocks(), kv.freeBlocks(),
                promptTokens, generationTokens, scheduler.preemptions(), kv.prefixQueries(), kv.prefixHits(), steps,
                speculator == null ? SpecDecodeStats.OFF : speculator.stats());
    }

    @Override
    public void shutdown(Duration grace) {
        accepting = false;
        GenerationService.awaitIdle(() -> stats.running() > 0 || stats.waiting() > 0 || !inbox.isEmpty(), grace);
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
