package dev.tandem.cluster.router;

import dev.tandem.cluster.policy.ClusterDesign;
import dev.tandem.cluster.policy.Placement;
import dev.tandem.cluster.policy.PoolPolicy;
import dev.tandem.cluster.policy.RequestShape;
import dev.tandem.cluster.policy.RoleChange;
import dev.tandem.cluster.policy.RoutingPolicy;
import dev.tandem.cluster.worker.Worker;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.tokenizer.Tokenizer;
import dev.tandem.engine.EngineStats;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.GenerationService;
import dev.tandem.engine.QueueFullException;
import dev.tandem.engine.RequestHandle;
import dev.tandem.engine.TokenListener;
import dev.tandem.engine.transport.KvTransferStats;

import java.time.Duration;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.logging.Logger;

/**
 * Splitwise's cluster-level scheduler. Each request is placed by the design's {@link RoutingPolicy} (a prompt
 * worker by pending prompt tokens, a token worker by free KV blocks); the token worker's blocks are reserved
 * before the prefill starts; the first token comes from the prompt worker and the rest from the token worker,
 * in order and once each. The {@link PoolPolicy} moves workers between pools as load swings. Failed workers'
 * requests are recomputed elsewhere. The router is a {@link GenerationService}, so the HTTP server runs on a
 * cluster exactly as on one engine.
 */
public final class Router implements GenerationService {
    private static final Logger LOG = Logger.getLogger(Router.class.getName());
    /** Tokens per KV block of every worker (the engine's default). */
    private static final int BLOCK = KvLayout.DEFAULT_BLOCK_SIZE;

    /**
     * @param transferTimeout    deadline of a hand-over, from the prefill's start to its commit
     * @param placementTimeout   how long a request may wait for a worker with room before it fails
     * @param maxAttempts        failures of one request's workers before it fails
     * @param maxQueue           requests waiting for a placement before new ones are refused (the server answers 429)
     * @param reservationTimeout how long a token worker holds a reservation without its hand-over; null: twice the
     *                           transfer timeout and a second, so that the prompt side's failure normally comes first
     *                           and the router can still have the token worker recompute the KV
     */
    public record Config(ClusterDesign design, Duration transferTimeout, Duration placementTimeout, int maxAttempts, Duration rebalanceEvery,
                         int maxQueue, Duration reservationTimeout) {
        public static Config of(ClusterDesign design) {
            return new Config(design, Duration.ofSeconds(30), Duration.ofSeconds(60), 3, Duration.ofMillis(20), 1024, null);
        }

        public Config withTransferTimeout(Duration d) { return new Config(design, d, placementTimeout, maxAttempts, rebalanceEvery, maxQueue, reservationTimeout); }

        public Config withPlacementTimeout(Duration d) { return new Config(design, transferTimeout, d, maxAttempts, rebalanceEvery, maxQueue, reservationTimeout); }

        public Config withMaxQueue(int n) { return new Config(design, transferTimeout, placementTimeout, maxAttempts, rebalanceEvery, n, reservationTimeout); }

        public Config withReservationTimeout(Duration d) { return new Config(design, transferTimeout, placementTimeout, maxAttempts, rebalanceEvery, maxQueue, d); }

        /** The reservation a token worker holds for a split attempt's hand-over. */
        public Duration reservationTimeout() {
            return reservationTimeout != null ? reservationTimeout : transferTimeout.multipliedBy(2).plusSeconds(1);
        }
    }

    /** The request can never be placed: no healthy worker of a needed kind, or none big enough. */
    static final class UnservableException extends IllegalStateException {
        UnservableException(String message) { super(message); }

        UnservableException(String message, Throwable cause) { super(message, cause); }
    }

    private final List<Worker> workers;
    private final Tokenizer tokenizer;
    private final int contextLength;
    private final Config config;
    private final RoutingPolicy routing;
    private final PoolPolicy pools;
    private final RouterLoad placed;
    private final ConcurrentLinkedQueue<RoutedRequest> pending = new ConcurrentLinkedQueue<>();
    private final Set<RoutedRequest> active = ConcurrentHashMap.newKeySet();
    private final AtomicLong ids = new AtomicLong();
    private final AtomicLong roleChanges = new AtomicLong(), recomputes = new AtomicLong(), failovers = new AtomicLong(),
            reservationsExpired = new AtomicLong();
    private final Thread thread;
    private volatile boolean accepting = true, closed;
    private volatile java.util.function.Supplier<String> degraded = () -> null;

    /** @param workers indexed by their id */
    public Router(List<? extends Worker> workers, Tokenizer tokenizer, int contextLength, Config config) {
        this(workers, tokenizer, contextLength, config, config.design().routing(BLOCK), config.design().pools());
    }

    /** With policies other than the design's defaults (the simulator's, a test's thresholds). */
    public Router(List<? extends Worker> workers, Tokenizer tokenizer, int contextLength, Config config, RoutingPolicy routing, PoolPolicy pools) {
        for (int i = 0; i < workers.size(); i++) {
            if (workers.get(i).id() != i) throw new IllegalArgumentException("worker " + i + " has id " + workers.get(i).id());
        }
        this.workers = new java.util.concurrent.CopyOnWriteArrayList<>(workers);
        this.tokenizer = tokenizer;
        this.contextLength = contextLength;
        this.config = config;
        this.routing = routing;
        this.pools = pools;
        this.placed = new RouterLoad();
        this.thread = Thread.ofPlatform().daemon().name("tandem-router").start(this::run);
    }

    public Config config() { return config; }

    public List<Worker> workers() { return workers; }

    /** Adds a worker that joined (membership); it gets the next id. Workers that left stay, unhealthy, under their id. */
    public synchronized Worker add(java.util.function.IntFunction<? extends Worker> make) {
        Worker w = make.apply(workers.size());
        if (w.id() != workers.size()) throw new IllegalArgumentException("worker id " + w.id() + ", expected " + workers.size());
        workers.add(w);
        LockSupport.unpark(thread);
        return w;
    }

    Worker worker(int id) { return workers.get(id); }

    RouterLoad placed() { return placed; }

    @Override
    public Tokenizer tokenizer() { return tokenizer; }

    @Override
    public int contextLength() { return contextLength; }

    @Override
    public RequestHandle submit(GenerationRequest request, TokenListener listener) {
        if (!accepting) throw new IllegalStateException("the router is shutting down");
        int total = request.promptTokens().length + request.maxTokens();
        if (total > contextLength) {
            throw new IllegalArgumentException("the prompt (" + request.promptTokens().length + " tokens) plus max_tokens ("
                    + request.maxTokens() + ") is " + total + " tokens, over the model's context of " + contextLength);
        }
        if (pending.size() >= config.maxQueue()) throw new QueueFullException(config.maxQueue());
        RoutedRequest r = new RoutedRequest(this, ids.incrementAndGet(), request, listener,
                System.nanoTime() + config.placementTimeout().toNanos());
        active.add(r);
        enqueue(r);
        return new RequestHandle() {
            public long id() { return r.id; }

            public void cancel() { r.cancel(); }
        };
    }

    void enqueue(RoutedRequest r) {
        pending.add(r);
        LockSupport.unpark(thread);
    }

    /** Places the request's remainder now, or empty when no worker has room yet. */
    Optional<Placement> place(GenerationRequest rest, Set<Integer> excluded) {
        List<WorkerView> views = views(excluded);
        if (views.stream().noneMatch(WorkerView::takesPrompts) || views.stream().noneMatch(WorkerView::takesTokens)) {
            throw new UnservableException("no healthy worker left that can " + (views.stream().noneMatch(WorkerView::takesPrompts)
                    ? "run its prompt" : "generate its tokens") + " (" + excluded.size() + " failed for it, "
                    + workers.stream().filter(w -> !w.healthy()).count() + " of " + workers.size() + " down)");
        }
        long need = (rest.promptTokens().length + (long) rest.maxTokens() + BLOCK - 1) / BLOCK;
        if (views.stream().filter(WorkerView::takesTokens).noneMatch(v -> v.totalKvBlocks() >= need)) {
            throw new UnservableException("the request needs " + need + " KV blocks; no token-capable worker has that many");
        }
        return routing.place(new RequestShape(rest.promptTokens().length, rest.maxTokens()), views);
    }

    private List<WorkerView> views(Set<Integer> excluded) {
        List<WorkerView> out = new ArrayList<>(workers.size());
        for (Worker w : workers) out.add(WorkerView.of(w, placed.of(w.id()), excluded.contains(w.id())));
        return out;
    }

    private void run() {
        long nextRebalance = 0;
        while (!closed) {
            try {
                if (System.nanoTime() - nextRebalance > 0) {
                    rebalance();
                    nextRebalance = System.nanoTime() + config.rebalanceEvery().toNanos();
                }
                int n = pending.size();
                for (int i = 0; i < n; i++) {
                    RoutedRequest r = pending.poll();
                    if (r == null) break;
                    if (!r.tryPlace()) pending.add(r);
                }
                active.removeIf(RoutedRequest::done);
                LockSupport.parkNanos(this, pending.isEmpty() ? 20_000_000 : 2_000_000);
            } catch (RuntimeException e) {
                LOG.warning("router: " + e);
            }
        }
    }

    private void rebalance() {
        List<RoleChange> changes = pools.rebalance(views(Set.of()));
        for (RoleChange c : changes) {
            Worker w = workers.get(c.worker());
            if (w.role() != c.from()) continue;
            w.setRole(c.to());
            roleChanges.incrementAndGet();
            LOG.info("router: worker " + c.worker() + " moves from the " + c.from() + " pool to the " + c.to() + " pool");
        }
    }

    /** Where /health learns that something is degraded (etcd lost); the source returns null while all is well. */
    public void setDegradedSource(java.util.function.Supplier<String> source) { this.degraded = source; }

    @Override
    public String degraded() { return degraded.get(); }

    void recomputed() { recomputes.incrementAndGet(); }

    /** A token worker gave up waiting for a hand-over's KV (its reservation ran out before the sender failed). */
    void reservationExpired() { reservationsExpired.incrementAndGet(); }

    void failedOver() { failovers.incrementAndGet(); }

    /** Counters of the cluster for /metrics. */
    public RouterStats routerStats() {
        int prompt = 0, token = 0, mixed = 0, down = 0;
        for (Worker w : workers) {
            if (!w.healthy()) {
                down++;
                continue;
            }
            switch (w.role()) {
                case PROMPT -> prompt++;
                case TOKEN -> token++;
                case MIXED -> mixed++;
            }
        }
        long bytes = 0, transfers = 0, failures = 0;
        double seconds = 0;
        Set<KvTransferStats> seen = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
        for (Worker w : workers) {
            KvTransferStats s = w.kvStats();
            if (s == null || !seen.add(s)) continue; // in-process workers share one transport
            bytes += s.bytesSent();
            transfers += s.handovers();
            failures += s.failures();
            seconds += s.latencySecondsSum();
        }
        return new RouterStats(prompt, token, mixed, down, roleChanges.get(), bytes, transfers, seconds, failures, reservationsExpired.get(),
                recomputes.get(), failovers.get());
    }

    @Override
    public List<Metric> extraMetrics() {
        RouterStats s = routerStats();
        return List.of(
                new Metric("tandem:prompt_pool_workers", "Healthy workers in the prompt pool.", false, s.promptWorkers()),
                new Metric("tandem:token_pool_workers", "Healthy workers in the token pool.", false, s.tokenWorkers()),
                new Metric("tandem:mixed_pool_workers", "Healthy workers in the mixed pool.", false, s.mixedWorkers()),
                new Metric("tandem:down_workers", "Workers that stopped or lost their lease.", false, s.downWorkers()),
                new Metric("tandem:role_changes_total", "Workers moved between pools by the pool policy.", true, s.roleChanges()),
                new Metric("tandem:kv_transfer_bytes_total", "KV-cache bytes sent from prompt to token workers.", true, s.kvBytesSent()),
                new Metric("tandem:kv_transfers_total", "Sequences handed over from prompt to token workers.", true, s.kvTransfers()),
                new Metric("tandem:kv_transfer_seconds_total", "Sum over hand-overs of the time from the first token to the hand-over sent (transfer not hidden by compute).", true, s.kvTransferSecondsSum()),
                new Metric("tandem:kv_transfer_failures_total", "KV transfers that failed or passed their deadline.", true, s.kvTransferFailures()),
                new Metric("tandem:kv_reservations_expired_total", "Hand-overs whose token worker gave up waiting for the KV before the sender failed (the sender was then cancelled).", true, s.kvReservationsExpired()),
                new Metric("tandem:kv_recomputes_total", "Hand-overs whose KV the token worker recomputed after a failed transfer.", true, s.recomputes()),
                new Metric("tandem:failovers_total", "Requests moved to another worker after one failed.", true, s.failovers()));
    }

    /** The workers' counters summed (KV usage averaged), as one engine would report them. */
    @Override
    public EngineStats stats() {
        int running = 0, waiting = 0, total = 0, free = 0;
        long prompt = 0, gen = 0, pre = 0, q = 0, h = 0, steps = 0;
        dev.tandem.engine.spec.SpecDecodeStats spec = dev.tandem.engine.spec.SpecDecodeStats.OFF;
        for (Worker w : workers) {
            if (!w.healthy()) continue;
            EngineStats s = w.stats();
            spec = spec.plus(s.speculative());
            running += s.running();
            waiting += s.waiting();
            total += s.kvBlocksTotal();
            free += s.kvBlocksFree();
            prompt += s.promptTokens();
            gen += s.generationTokens();
            pre += s.preemptions();
            q += s.prefixCacheQueries();
            h += s.prefixCacheHits();
            steps += s.steps();
        }
        return new EngineStats(running, waiting + pending.size(), total == 0 ? 0 : 1.0 - free / (double) total, total, free,
                prompt, gen, pre, q, h, steps, spec);
    }

    /** Fails every request still waiting or running (a worker-side hang must never hang its client). */
    private void failAll(String why) {
        for (RoutedRequest r : active) r.failNow(new IllegalStateException(why));
    }

    @Override
    public void shutdown(Duration grace) {
        accepting = false;
        GenerationService.awaitIdle(() -> active.stream().anyMatch(r -> !r.done()), grace);
        close();
    }

    @Override
    public void close() {
        accepting = false;
        for (RoutedRequest r : active) r.cancel();
        closed = true;
        LockSupport.unpark(thread);
        failAll("the router stopped");
    }

    /** Closes the router and every worker. */
    public void closeAll() {
        close();
        workers.forEach(Worker::close);
    }

    /** Pool sizes (healthy workers by current role), role changes, KV transfers and recoveries. */
    public record RouterStats(int promptWorkers, int tokenWorkers, int mixedWorkers, int downWorkers, long roleChanges,
                              long kvBytesSent, long kvTransfers, double kvTransferSecondsSum, long kvTransferFailures,
                              long kvReservationsExpired, long recomputes, long failovers) {}
}
