package dev.tandem.engine.sched;

import dev.tandem.engine.EngineConfig;
import dev.tandem.engine.kv.KvCacheManager;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.function.ToIntFunction;

/**
 * Fills each step's token budget the way vLLM's v1 scheduler does: running sequences first (a decode needs one
 * token, an unfinished prompt its next chunk), then waiting ones in arrival order, as far as the budget, the
 * running-sequence limit and free KV blocks allow. When a running sequence cannot get a block, the most
 * recently admitted sequence is preempted: its blocks are freed and it goes back to the front of the queue,
 * to be recomputed later. Nothing is dropped, duplicated or reordered. The worker's role does not change
 * scheduling: a prompt worker's sequences leave after their first token (hand-over), and a token worker's arrive
 * with their prompt already computed, so the same code batches prefills, decodes or both.
 */
public final class Scheduler {
    /**
     * One sequence's share of a step: its tokens [start, start + count) go through the model, followed by up to
     * {@code lookahead} draft tokens (speculative decoding) for which budget and KV blocks are reserved.
     */
    public record Scheduled(Sequence seq, int start, int count, int lookahead) {
        public Scheduled(Sequence seq, int start, int count) { this(seq, start, count, 0); }

        /** Whether this chunk reaches the sequence's last token, so a new token is sampled after it. */
        public boolean samples() { return start + count == seq.numTokens(); }
    }

    private final EngineConfig config;
    private final KvCacheManager kv;
    private final Deque<Sequence> waiting = new ArrayDeque<>();
    private final List<Sequence> running = new ArrayList<>();
    private long preemptions;
    private ToIntFunction<Sequence> lookahead = seq -> 0;

    public Scheduler(EngineConfig config, KvCacheManager kv) {
        this.config = config;
        this.kv = kv;
    }

    public void add(Sequence seq) { waiting.addLast(seq); }

    /** How many draft tokens a decoding sequence wants scored with it (speculative decoding); none by default. */
    public void setLookahead(ToIntFunction<Sequence> lookahead) { this.lookahead = lookahead; }

    public int numWaiting() { return waiting.size(); }

    public int numRunning() { return running.size(); }

    public long preemptions() { return preemptions; }

    public boolean idle() { return waiting.isEmpty() && running.isEmpty(); }

    public List<Sequence> running() { return running; }

    public Deque<Sequence> waiting() { return waiting; }

    /** Chooses this step's work; an empty list means nothing can run now. */
    public List<Scheduled> schedule() {
        List<Scheduled> out = new ArrayList<>();
        int budget = config.maxNumBatchedTokens();
        boolean preempted = false;
        for (int i = 0; i < running.size() && budget > 0; i++) {
            Sequence seq = running.get(i);
            int n = Math.min(seq.remaining(), budget);
            // Drafts only after a chunk that reaches the end (a token is sampled), and never at the cost of a later
            // running sequence's decode token or of a preemption.
            int later = running.size() - 1 - i;
            int extra = n == seq.remaining() ? Math.min(lookahead.applyAsInt(seq), budget - n - later) : 0;
            // Blocks for drafts only while each later sequence can still get a block for its own next token.
            if (extra > 0 && (kv.freeBlocks() < kv.blocksFor(seq.numComputed() + n + extra) - seq.numBlocks() + later
                    || !kv.allocate(seq, seq.numComputed() + n + extra))) {
                extra = 0;
            }
            while (!kv.allocate(seq, seq.numComputed() + n)) {
                Sequence victim = running.removeLast();
                preempt(victim);
                preempted = true;
                if (victim == seq) break;
            }
            if (seq.state() != Sequence.State.RUNNING) break; // it was the victim: nothing after it is running
            extra = Math.max(0, extra);
            out.add(new Scheduled(seq, seq.numComputed(), n, extra));
            budget -= n + extra;
        }
        // Admit waiting sequences only when no one was preempted this step (they would just push others out).
        while (!preempted && budget > 0 && !waiting.isEmpty() && running.size() < config.maxNumSeqs()) {
            Sequence seq = waiting.peekFirst();
            if (seq.numBlocks() == 0 && seq.numComputed() == 0) {
                int cached = kv.acquireCachedPrefix(seq);
                seq.setNumComputed(cached);
                if (seq.generated() == 0) seq.setCachedPromptTokens(cached);
            }
            int n = Math.min(seq.remaining(), budget);
            if (!kv.allocate(seq, seq.numComputed() + n)) break;
            // A prompt finishing in this step may already be followed by drafts: its first tokens are speculated too.
            int extra = n == seq.remaining() ? Math.max(0, Math.min(lookahead.applyAsInt(seq), budget - n)) : 0;
            if (extra > 0 && !kv.allocate(seq, seq.numComputed() + n + extra)) extra = 0;
            waiting.pollFirst();
            seq.setState(Sequence.State.RUNNING);
            running.add(seq);
            out.add(new Scheduled(seq, seq.numComputed(), n, extra));
            budget -= n + extra;
        }
        return out;
    }

    private void preempt(Sequence seq) {
        kv.release(seq);
        seq.setNumComputed(0);
        seq.setState(Sequence.State.WAITING);
        waiting.addFirst(seq);
        preemptions++;
    }

    /** Takes a sequence out of the batch and keeps its blocks (a prompt worker's hand-over still reads them). */
    public void detach(Sequence seq) {
        if (!running.remove(seq)) waiting.remove(seq);
    }

    /** Takes a finished or cancelled sequence out and frees its blocks. */
    public void remove(Sequence seq) {
        if (!running.remove(seq)) waiting.remove(seq);
        kv.release(seq);
    }
}
