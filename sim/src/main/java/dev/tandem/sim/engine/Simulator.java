package dev.tandem.sim.engine;

import dev.tandem.cluster.policy.Placement;
import dev.tandem.cluster.policy.PoolPolicy;
import dev.tandem.cluster.policy.RequestShape;
import dev.tandem.cluster.policy.RoleChange;
import dev.tandem.engine.Role;
import dev.tandem.sim.config.PoolSpec;
import dev.tandem.sim.config.SimConfig;
import dev.tandem.sim.perf.PerfModel;
import dev.tandem.sim.perf.PhaseTimes;
import dev.tandem.sim.workload.Workload;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * The discrete-event cluster simulation. Events: a request arrives (the real router's {@link RoutingPolicy}
 * places it), an instance ends an iteration, a KV hand-over completes, and the router's timer fires (its
 * {@link PoolPolicy} may move instances between pools). Single-threaded and seeded only through the workload: the same inputs give the same
 * results bit for bit.
 */
public final class Simulator {
    private final SimConfig config;
    private final Workload workload;
    private final Instance[] instances;
    private final Cell[] cells;
    private final boolean fixedPools;
    private final Requests rq;
    private final EventQueue events = new EventQueue();
    private final long kvBytesPerToken;
    private final int layers;
    private final long largestCapacity;
    private double now;
    private final double[] clock = new double[1]; // now, shared with the instances
    private long joinOrder;
    private int lastArrival = -1;
    private int rejected;
    private final PoolTimeline timeline;
    private final int[] roleCounts = new int[Role.values().length];
    private final PhaseTimes reference;

    private final double rebalancePeriodS;

    /** Slowdowns are against the request run alone on a DGX-A100 at TP 8 (Splitwise's SLO reference). */
    public static final String REFERENCE_HARDWARE = "a100-80gb";

    /** Whether decode-only iterations may run as one multi-iteration step (off only to check that it changes nothing). */
    private final boolean multiIterationSteps;

    public Simulator(SimConfig config, PerfModel perf, Workload workload) {
        this(config, perf, workload, true);
    }

    /** @param multiIterationSteps false runs one event per iteration: for tests and the benchmark's with/without ratio */
    public Simulator(SimConfig config, PerfModel perf, Workload workload, boolean multiIterationSteps) {
        this.multiIterationSteps = multiIterationSteps;
        this.config = config;
        this.workload = workload;
        List<Instance> list = new ArrayList<>();
        long largest = 0;
        for (int p = 0; p < config.pools().size(); p++) {
            PoolSpec ps = config.pools().get(p);
            PhaseTimes times = perf.get(config.model().name(), ps.machine().hardware(), ps.tensorParallel());
            // With a measured cost per attention pair, steps pay their chunks' causal attention themselves, on a prompt
            // curve from which the profile rows' own attention was taken out.
            if (config.instance().contextNsPerPair() > 0) times = times.withoutPromptAttention(config.instance().contextNsPerPair() * 1e-9);
            long cap = config.instance().kvTokens(config.model(), ps.machine(), ps.tensorParallel());
            largest = Math.max(largest, cap);
            for (int i = 0; i < ps.instances(); i++) {
                list.add(new Instance(list.size(), p, ps.role(), times, cap, config.instance().blockSize(),
                        config.instance().maxBatchTokens(), config.instance().maxBatchSize(), config.instance().chunkedPrefill(),
                        config.instance().contextNsPerPair() * 1e-9, config.instance().decodeContextNsPerToken() * 1e-9,
                        config.instance().decodeContextBaseTokens(), clock));
                roleCounts[ps.role().ordinal()]++;
            }
        }
        this.instances = list.toArray(new Instance[0]);
        this.largestCapacity = largest;
        this.cells = deal(config, instances);
        this.fixedPools = cells[0].pools == PoolPolicy.FIXED;
        this.rebalancePeriodS = config.router().rebalancePeriodS();
        this.rq = new Requests(workload);
        this.kvBytesPerToken = config.model().kvBytesPerToken();
        this.layers = config.model().layers();
        this.reference = perf.has(config.model().name(), REFERENCE_HARDWARE, 8)
                ? perf.get(config.model().name(), REFERENCE_HARDWARE, 8) : instances[0].times;
        this.timeline = new PoolTimeline();
        timeline.record(0, roleCounts);
    }

    /** Deals each pool's instances out to the cells in turn, so every cell has the cluster's mix. */
    private static Cell[] deal(SimConfig config, Instance[] instances) {
        int k = config.router().cells();
        List<List<Instance>> members = new ArrayList<>();
        for (int c = 0; c < k; c++) members.add(new ArrayList<>());
        for (int p = 0; p < config.pools().size(); p++) {
            int next = 0;
            for (Instance in : instances) {
                if (in.pool != p) continue;
                in.cell = next;
                members.get(next).add(in);
                next = (next + 1) % k;
            }
            if (config.pools().get(p).instances() > 0 && config.pools().get(p).instances() < k) {
                throw new IllegalArgumentException("pool '" + config.pools().get(p).name() + "' has " + config.pools().get(p).instances()
                        + " instances, fewer than the " + k + " router cells: every cell needs one of each pool");
            }
        }
        Cell[] cells = new Cell[k];
        for (int c = 0; c < k; c++) {
            cells[c] = new Cell(members.get(c), config.router().routing(config.instance().blockSize()), config.router().pools());
        }
        return cells;
    }

    public SimResult run() {
        long wallStart = System.nanoTime();
        if (rq.size() > 0) {
            events.push(rq.arrival[0], EventQueue.ARRIVAL, 0);
            if (!fixedPools) for (int c = 0; c < cells.length; c++) events.push(rq.arrival[0], EventQueue.REBALANCE, c);
        }
        long eventCount = 0;
        while (!events.isEmpty()) {
            now = events.topTime();
            clock[0] = now;
            int kind = events.topKind(), arg = events.topArg();
            events.pop();
            eventCount++;
            switch (kind) {
                case EventQueue.ARRIVAL -> arrive(arg);
                case EventQueue.STEP_END -> stepEnd(instances[arg]);
                case EventQueue.KV_DONE -> kvDone(arg);
                case EventQueue.REBALANCE -> periodicRebalance(cells[arg], arg);
                default -> throw new IllegalStateException("unknown event kind " + kind);
            }
        }
        timeline.record(now, roleCounts);
        return SimResult.of(config, workload, rq, instances, timeline, reference, rejected, unplaced(), eventCount,
                (System.nanoTime() - wallStart) / 1e9);
    }

    private void arrive(int r) {
        lastArrival = r;
        if (r + 1 < rq.size()) events.push(rq.arrival[r + 1], EventQueue.ARRIVAL, r + 1);
        if (rq.prompt[r] + 1L > largestCapacity) { // can never fit in any instance's KV memory
            rq.state[r] = Requests.REJECTED;
            rejected++;
            return;
        }
        Cell cell = cells[r % cells.length];
        if (!cell.waiting.isEmpty() || !tryPlace(cell, r)) {
            rq.state[r] = Requests.WAITING;
            cell.waiting.addLast(r);
        }
    }

    /** Asks the router's policy for a placement; false when no instance can take the request now. */
    private boolean tryPlace(Cell cell, int r) {
        Optional<Placement> placed = cell.routing.place(new RequestShape(rq.prompt[r], rq.output[r]), cell.view);
        if (placed.isEmpty()) return false;
        Instance p = cell.members[placed.get().promptWorker()], t = cell.members[placed.get().tokenWorker()];
        rq.promptInstance[r] = p.id;
        rq.tokenInstance[r] = t.id;
        rq.context[r] = rq.prompt[r];
        rq.state[r] = Requests.QUEUED;
        p.queue.addLast(r);
        p.pendingPromptTokens += rq.prompt[r];
        if (p != t) {
            t.reserve(rq.prompt[r]);
        }
        startStep(p);
        return true;
    }

    private void retryWaiting(Cell cell) {
        while (!cell.waiting.isEmpty() && tryPlace(cell, cell.waiting.peekFirst())) cell.waiting.pollFirst();
    }

    /**
     * The pool policy runs every {@code rebalancePeriodS} of simulated time while the cell has work or a lent machine
     * (so a lent machine goes home when arrivals pause), as the real router calls it on its timer. Not after each
     * placement: the policy reads every worker of the cell, and a thousand-machine cell places ~1,500 requests per
     * simulated second against the timer's 50 calls.
     */
    private void periodicRebalance(Cell cell, int index) {
        rebalance(cell);
        boolean active = lastArrival < rq.size() - 1;
        for (int i = 0; i < cell.members.length && !active; i++) {
            Instance in = cell.members[i];
            active = in.busy || in.role != in.homeRole || !in.queue.isEmpty();
        }
        if (active) events.push(now + rebalancePeriodS, EventQueue.REBALANCE, index);
    }

    private void rebalance(Cell cell) {
        if (fixedPools) return;
        List<RoleChange> changes = cell.pools.rebalance(cell.view);
        if (changes.isEmpty()) return;
        for (RoleChange c : changes) {
            Instance w = cell.members[c.worker()];
            roleCounts[w.role.ordinal()]--;
            w.role = c.to();
            roleCounts[w.role.ordinal()]++;
        }
        timeline.record(now, roleCounts);
    }

    /**
     * Starts the instance's next iteration if it is idle and has work. A busy instance running several decode-only
     * iterations as one step is cut short at its next iteration boundary, where the new work joins.
     */
    private void startStep(Instance in) {
        if (in.busy) {
            if (in.stepIterations > 1 && (!in.queue.isEmpty() || !in.ready.isEmpty())) shorten(in);
            return;
        }
        while (!in.ready.isEmpty()) { // hand-overs that arrived: their memory was reserved
            int r = in.ready.pollFirst();
            in.unreserve(rq.context[r]);
            in.join(rq, r, joinOrder++);
        }
        // Every running sequence gains one token of KV this iteration: make room by preemption if needed.
        while (in.running > 0 && in.usedTokens() + in.running > in.kvCapacity) in.preemptYoungest(rq);
        int decodes = in.running;
        long promptTokens = 0;
        int prefills = 0;
        double contextSeconds = 0;
        if (in.partial >= 0) { // chunked prefill: the prompt part way through goes on first (its memory is held)
            int r = in.partial;
            int chunk = (int) Math.min(rq.context[r] - rq.prefilled[r], Math.max(1, in.maxBatchTokens - decodes));
            // attends to its earlier chunks, and causally within itself
            contextSeconds = ((double) chunk * rq.prefilled[r] + chunk * (chunk + 1.0) / 2) * in.contextSecondsPerPair;
            in.partial = -1;
            in.stepChunk[0] = chunk;
            in.stepBatch[prefills++] = r;
            promptTokens += chunk;
        }
        while (!in.queue.isEmpty() && decodes + prefills < in.maxBatchSize) {
            int r = in.queue.peekFirst();
            int len = rq.context[r];
            if (len + 1L > in.kvCapacity) { // can never run here (a smaller instance, or a sequence outgrew memory): dropped
                in.queue.pollFirst();
                in.pendingPromptTokens -= len;
                if (Double.isNaN(rq.firstToken[r])) release(r); // not started: its hand-over reservation is still held
                rq.state[r] = Requests.REJECTED;
                rejected++;
                continue;
            }
            int chunk = len;
            if (in.chunkedPrefill) {
                // The engine's step budget: running decodes first, then as much of the prompt as is left of it.
                long left = in.maxBatchTokens - decodes - promptTokens;
                if (left <= 0) break;
                chunk = (int) Math.min(chunk, left);
            } else if (prefills > 0 && promptTokens + len > in.maxBatchTokens) {
                break;
            }
            if (in.usedTokens() + decodes + len > in.kvCapacity) break; // waits for memory
            in.queue.pollFirst();
            rq.state[r] = Requests.PREFILLING;
            if (prefills == in.stepBatch.length) {
                in.stepBatch = Arrays.copyOf(in.stepBatch, prefills * 2);
                in.stepChunk = Arrays.copyOf(in.stepChunk, prefills * 2);
            }
            in.stepChunk[prefills] = chunk;
            in.stepBatch[prefills++] = r;
            promptTokens += chunk;
            contextSeconds += chunk * (chunk + 1.0) / 2 * in.contextSecondsPerPair; // its causal attention within the chunk
            in.hold(len);
        }
        if (decodes == 0 && prefills == 0) return;
        // Decode-only iterations with nothing waiting repeat identically until a sequence finishes or memory runs
        // short: they run as one step of k iterations (one event instead of k), cut short if work arrives.
        int k = 1;
        // Not with the decode context term: each iteration then costs more than the last, and a step cut short at an
        // iteration boundary (shorten) would keep the wrong length for the iterations it ran.
        if (multiIterationSteps && prefills == 0 && in.queue.isEmpty() && in.decodeSecondsPerToken == 0) {
            long untilFinish = (in.finishing.peek() >>> 32) - in.iteration;
            long untilFull = (in.kvCapacity - in.usedTokens()) / decodes;
            k = (int) Math.max(1, Math.min(Integer.MAX_VALUE, Math.min(untilFinish, untilFull)));
        }
        in.busy = true;
        in.stepStart = now;
        in.stepDecodes = decodes;
        in.stepPrefills = prefills;
        in.stepPromptTokens = promptTokens;
        in.stepIterations = k;
        if (decodes > 0 && in.decodeSecondsPerToken > 0) { // (then k = 1)
            // The decode rows read every cached token's K and V: the batch's cached tokens beyond the base per sequence.
            double cached = in.runningContext() - (double) decodes * in.decodeBaseTokens;
            contextSeconds += Math.max(0, cached) * in.decodeSecondsPerToken;
        }
        in.stepSeconds = in.times.iterationSeconds(promptTokens, decodes) + contextSeconds;
        in.stepEndAt = k == 1 ? now + in.stepSeconds : now + k * in.stepSeconds;
        in.stepChanged();
        events.push(in.stepEndAt, EventQueue.STEP_END, in.id);
    }

    /** Ends a multi-iteration decode step at the first iteration boundary after now (its old end event goes stale). */
    private void shorten(Instance in) {
        long j = (long) Math.floor((now - in.stepStart) / in.stepSeconds) + 1;
        while (in.stepStart + j * in.stepSeconds < now) j++;
        if (j >= in.stepIterations) return;
        in.stepIterations = (int) j;
        in.stepEndAt = in.stepStart + j * in.stepSeconds;
        in.stepChanged();
        events.push(in.stepEndAt, EventQueue.STEP_END, in.id);
    }

    private void stepEnd(Instance in) {
        if (!in.busy || now != in.stepEndAt) return; // the end of a step that was since cut short
        in.busy = false;
        in.stepChanged();
        in.iterations += in.stepIterations;
        double dt = now - in.stepStart;
        if (in.stepPrefills == 0) in.busyToken += dt;
        else if (in.stepDecodes == 0) in.busyPrompt += dt;
        else in.busyMixed += dt;
        in.pendingPromptTokens -= in.stepPromptTokens;
        if (in.stepDecodes > 0) {
            in.advance(in.stepIterations);
            while (!in.finishing.isEmpty() && (in.finishing.peek() >>> 32) <= in.iteration) {
                long e = in.finishing.pop();
                int r = (int) e;
                if (rq.state[r] != Requests.RUNNING || rq.tokenInstance[r] != in.id || rq.finishIteration[r] != (e >>> 32)) continue; // preempted since
                in.leave(rq, r);
                complete(r);
            }
        }
        for (int i = 0; i < in.stepPrefills; i++) {
            int r = in.stepBatch[i];
            // Only the step's last prompt can be part way through (its chunk took what was left of the budget).
            rq.prefilled[r] += in.stepChunk[i];
            if (rq.prefilled[r] < rq.context[r]) {
                in.partial = r; // stays PREFILLING, its memory held: the next iteration goes on with it first
                continue;
            }
            rq.prefilled[r] = 0;
            if (Double.isNaN(rq.firstToken[r])) { // the prompt phase made the first token
                rq.firstToken[r] = now;
                rq.remaining[r] = rq.output[r] - 1;
            }
            if (rq.remaining[r] == 0) {
                in.hold(-rq.context[r]);
                release(r);
                complete(r);
            } else if (rq.tokenInstance[r] == in.id) {
                in.hold(-rq.context[r]);
                in.join(rq, r, joinOrder++);
            } else {
                transfer(in, r, dt);
            }
        }
        startStep(in);
        Cell cell = cells[in.cell];
        if (!cell.waiting.isEmpty()) retryWaiting(cell);
    }

    /** Streams request r's KV cache to its token instance; the prompt instance holds it until the end. */
    private void transfer(Instance from, int r, double prefillS) {
        rq.state[r] = Requests.TRANSFERRING;
        long bytes = (long) rq.context[r] * kvBytesPerToken;
        double start = Math.max(now, from.nicFreeAt);
        double done = start + config.kvLink().exposedSeconds(bytes, layers, prefillS);
        from.nicFreeAt = done;
        events.push(done, EventQueue.KV_DONE, r);
    }

    private void kvDone(int r) {
        Instance p = instances[rq.promptInstance[r]], t = instances[rq.tokenInstance[r]];
        p.hold(-rq.context[r]);
        t.ready.addLast(r);
        startStep(t);
        startStep(p);
        Cell cell = cells[t.cell];
        if (!cell.waiting.isEmpty()) retryWaiting(cell);
    }

    /** Gives back the KV a request's token instance reserved for its hand-over, if it has one elsewhere. */
    private void release(int r) {
        if (rq.tokenInstance[r] == rq.promptInstance[r]) return;
        Instance t = instances[rq.tokenInstance[r]];
        t.unreserve(rq.context[r]);
    }

    private int unplaced() {
        int n = 0;
        for (Cell c : cells) n += c.waiting.size();
        return n;
    }

    private void complete(int r) {
        rq.state[r] = Requests.DONE;
        rq.finish[r] = now;
    }
}
