package dev.tandem.sim.engine;

import dev.tandem.cluster.policy.WorkerState;
import dev.tandem.engine.Role;
import dev.tandem.sim.perf.PhaseTimes;

/**
 * One simulated model instance (TP GPUs of a machine), as the router's policies see it and as its
 * scheduler runs: a FIFO of prompts to prefill, a continuous decode batch, and KV memory accounting.
 *
 * <p>Each iteration takes the running decodes (every one gains a token) plus queued prefills up to the batch
 * token limit (SplitwiseSim's batching, no chunking). Its length comes from the profile: prompt curve, token
 * curve, or the mixed-batch rule. Work is done per iteration and per joining or leaving sequence, never per
 * sequence per iteration: a sequence finishes at a known iteration number (a heap), and KV memory in use is
 * {@code base + running x iteration}. Decode-only iterations with nothing waiting run as one step of several
 * iterations (see {@code Simulator.startStep}); mid-step reads count the iterations already ended.
 */
final class Instance implements WorkerState {
    final int id;                                 // index in the whole cluster (events)
    int cell, localId;                            // its router cell, and its id as that cell's policies see it
    final int pool;
    final Role homeRole;
    Role role;
    final PhaseTimes times;
    final long kvCapacity;
    final int blockSize;
    private final int blockShift;                 // log2(blockSize) when a power of two, else -1
    final int maxBatchTokens, maxBatchSize;
    final boolean chunkedPrefill;
    final double contextSecondsPerPair;           // chunked prefill: a later chunk's attention over the earlier ones
    final double decodeSecondsPerToken;          // a decode step's read of its sequences' cached K and V, per token
    final long decodeBaseTokens;                 // ... beyond this many per sequence (what the profile's rows held)
    int[] stepChunk = new int[16];           // prompt tokens each of stepBatch's requests prefills this iteration

    final IntDeque queue = new IntDeque();       // waiting to prefill (new prompts; preempted ones in front)
    int partial = -1;                            // chunked prefill: the prompt part way through (memory held), served first
    final IntDeque ready = new IntDeque();       // KV arrived, joins the decode batch at the next iteration
    long pendingPromptTokens;
    // What KV use is made of. Changed only through the methods below, which forget the cached free KV.
    private long reservedTokens;                  // KV reserved for incoming hand-overs (in ready or in transfer)
    private int reservedCount;
    private long heldTokens;                      // KV of prefills in progress or waiting for their hand-over
    int[] runList = new int[64];
    int running;
    long iteration;
    private long contextBase;                     // sum over running of (context - joinIteration)
    final LongHeap finishing = new LongHeap();   // (finishIteration << 32) | request

    boolean busy;
    double stepStart, stepEndAt, stepSeconds;    // a step is stepIterations iterations of stepSeconds each
    int stepIterations;
    long stepPromptTokens;
    int stepDecodes;
    int[] stepBatch = new int[16];
    int stepPrefills;
    double nicFreeAt;

    double busyPrompt, busyToken, busyMixed;      // seconds of prefill-only, decode-only and mixed iterations
    long iterations;

    Instance(int id, int pool, Role role, PhaseTimes times, long kvCapacity, int blockSize, int maxBatchTokens, int maxBatchSize,
             boolean chunkedPrefill, double contextSecondsPerPair, double decodeSecondsPerToken, long decodeBaseTokens, double[] clock) {
        this.id = id;
        this.clock = clock;
        this.pool = pool;
        this.homeRole = role;
        this.role = role;
        this.times = times;
        this.kvCapacity = kvCapacity;
        this.blockSize = blockSize;
        this.blockShift = Integer.bitCount(blockSize) == 1 ? Integer.numberOfTrailingZeros(blockSize) : -1;
        this.maxBatchTokens = maxBatchTokens;
        this.maxBatchSize = maxBatchSize;
        this.chunkedPrefill = chunkedPrefill;
        this.contextSecondsPerPair = contextSecondsPerPair;
        this.decodeSecondsPerToken = decodeSecondsPerToken;
        this.decodeBaseTokens = decodeBaseTokens;
    }

    /** Cached tokens of the decoding sequences at the start of the current iteration. */
    long runningContext() { return contextBase + (long) running * iteration; }

    /** The simulation clock, for reading KV use in the middle of a multi-iteration step. */
    private final double[] clock;

    long usedTokens() {
        return contextBase + running * currentIteration() + heldTokens + reservedTokens;
    }

    /**
     * Decode iterations completed so far, counting those of a multi-iteration step that already ended (iteration j of
     * the step has ended once {@code stepStart + j * stepSeconds <= now}). Routing reads this for every worker on each
     * placement, and time only moves forward: the count is kept with the time its next iteration ends, so a read is
     * one comparison until then.
     */
    long currentIteration() {
        if (!busy || stepIterations == 1) return iteration;
        double now = clock[0];
        if (now >= nextIterationEndsAt) countEndedIterations(now);
        return iteration + endedInStep;
    }

    private void countEndedIterations(double now) {
        long j = Math.max(0, Math.min((long) ((now - stepStart) / stepSeconds), stepIterations)); // a guess, made exact below
        while (j < stepIterations && stepStart + (j + 1) * stepSeconds <= now) j++;
        while (j > 0 && stepStart + j * stepSeconds > now) j--;
        endedInStep = j;
        nextIterationEndsAt = j == stepIterations ? Double.POSITIVE_INFINITY : stepStart + (j + 1) * stepSeconds;
    }

    /** Forgets the counted iterations: called whenever the step changes. */
    void stepChanged() {
        nextIterationEndsAt = Double.NEGATIVE_INFINITY;
        freeValidUntil = Double.NEGATIVE_INFINITY;
    }

    /** KV reserved for a hand-over on its way here. */
    void reserve(long tokens) {
        reservedTokens += tokens;
        reservedCount++;
        freeValidUntil = Double.NEGATIVE_INFINITY;
    }

    /** A reservation ends: its sequence joins the batch, or it finished or failed elsewhere. */
    void unreserve(long tokens) {
        reservedTokens -= tokens;
        reservedCount--;
        freeValidUntil = Double.NEGATIVE_INFINITY;
    }

    /** KV held by a prefill in progress (then until its hand-over has left); negative to release it. */
    void hold(long tokens) {
        heldTokens += tokens;
        freeValidUntil = Double.NEGATIVE_INFINITY;
    }

    /** The decode batch ran {@code iterations} more iterations. */
    void advance(int iterations) {
        iteration += iterations;
        freeValidUntil = Double.NEGATIVE_INFINITY;
    }

    private double nextIterationEndsAt = Double.NEGATIVE_INFINITY;
    private long endedInStep;

    @Override public int id() { return localId; }
    @Override public Role homeRole() { return homeRole; }
    @Override public Role currentRole() { return role; }
    @Override public long pendingPromptTokens() { return pendingPromptTokens; }
    @Override public int runningSequences() { return running + reservedCount; }
    /**
     * Routing reads this for every worker on each placement, and between two placements only a few instances change:
     * the figure is kept until the instance changes (the methods above) or its step's next iteration ends.
     */
    @Override public long freeKvBlocks() {
        if (clock[0] < freeValidUntil) {
            assert freeBlocks == freeBlocksNow() : "instance " + id + " kept " + freeBlocks + " free KV blocks, has " + freeBlocksNow(); // tests run with -ea
            return freeBlocks;
        }
        freeBlocks = freeBlocksNow();
        freeValidUntil = !busy || stepIterations == 1 ? Double.POSITIVE_INFINITY : nextIterationEndsAt;
        return freeBlocks;
    }

    private long freeBlocksNow() {
        long free = Math.max(0, kvCapacity - usedTokens());
        return blockShift >= 0 ? free >>> blockShift : free / blockSize;
    }

    private double freeValidUntil = Double.NEGATIVE_INFINITY;
    private long freeBlocks;
    @Override public long totalKvBlocks() { return kvCapacity / blockSize; }

    /** Adds request r to the decode batch from the current iteration on. */
    void join(Requests rq, int r, long order) {
        rq.state[r] = Requests.RUNNING;
        rq.joinIteration[r] = iteration;
        rq.joinOrder[r] = order;
        long fin = iteration + rq.remaining[r];
        rq.finishIteration[r] = fin;
        contextBase += rq.context[r] - iteration;
        freeValidUntil = Double.NEGATIVE_INFINITY;
        if (running == runList.length) runList = java.util.Arrays.copyOf(runList, running * 2);
        rq.runSlot[r] = running;
        runList[running++] = r;
        finishing.push((fin << 32) | r);
    }

    /** Takes request r out of the decode batch; its KV is freed. */
    void leave(Requests rq, int r) {
        contextBase -= rq.context[r] - rq.joinIteration[r];
        freeValidUntil = Double.NEGATIVE_INFINITY;
        int slot = rq.runSlot[r];
        int last = runList[--running];
        runList[slot] = last;
        rq.runSlot[last] = slot;
    }

    /** Preempts the most recently joined sequence (vLLM's order): its KV is dropped and it is recomputed later. */
    void preemptYoungest(Requests rq) {
        int victim = runList[0];
        for (int i = 1; i < running; i++) if (rq.joinOrder[runList[i]] > rq.joinOrder[victim]) victim = runList[i];
        int tokens = (int) (rq.context[victim] + iteration - rq.joinIteration[victim]);
        leave(rq, victim);
        rq.remaining[victim] = (int) (rq.finishIteration[victim] - iteration);
        rq.context[victim] = tokens;
        rq.state[victim] = Requests.QUEUED;
        rq.prefilled[victim] = 0;
        rq.preemptions[victim]++;
        queue.addFirst(victim);
        pendingPromptTokens += tokens;
    }
}
