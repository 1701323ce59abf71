package dev.tandem.engine.sched;

import dev.tandem.core.sampling.Sampler;
import dev.tandem.engine.FinishReason;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.TokenListener;
import dev.tandem.engine.transport.KvStream;

import java.util.Arrays;

/**
 * A request inside the engine. Like vLLM's v1 scheduler it only knows how many tokens it has and how many of
 * them are in the KV cache; prefill, chunked prefill, decode and recompute after preemption all follow.
 */
public final class Sequence {
    public enum State { WAITING, RUNNING, FINISHED }

    private final long id;
    private final GenerationRequest request;
    private final TokenListener listener;
    private final Sampler sampler;
    private final long arrivalNanos;
    private int[] tokens;
    private int numTokens;
    private final int promptLength;
    private int numComputed;
    private int cachedPromptTokens;
    private State state = State.WAITING;
    private FinishReason finishReason;
    private volatile boolean cancelRequested;
    private boolean admitted;
    /** KV blocks held, in position order. */
    private int[] blocks = new int[8];
    private int numBlocks;
    /** How many of the held blocks are full and registered in the prefix cache. */
    private int numHashedBlocks;
    private long lastBlockHash = 0;
    /** Where a prompt worker sends this sequence's KV; null when it stays here. */
    private KvStream handover;

    public Sequence(long id, GenerationRequest request, TokenListener listener) {
        this.id = id;
        this.request = request;
        this.listener = listener;
        this.sampler = new Sampler(request.sampling());
        sampler.skip(request.sampledTokens()); // a recomputed remainder continues the stream where it stopped
        this.arrivalNanos = System.nanoTime();
        this.promptLength = request.promptTokens().length;
        this.tokens = Arrays.copyOf(request.promptTokens(), promptLength + Math.min(request.maxTokens(), 4096) + 1);
        this.numTokens = promptLength;
    }

    public long id() { return id; }

    public GenerationRequest request() { return request; }

    public TokenListener listener() { return listener; }

    public Sampler sampler() { return sampler; }

    public long arrivalNanos() { return arrivalNanos; }

    public int[] tokens() { return tokens; }

    public int numTokens() { return numTokens; }

    public int promptLength() { return promptLength; }

    public int generated() { return numTokens - promptLength; }

    public int numComputed() { return numComputed; }

    public void setNumComputed(int n) { numComputed = n; }

    /** Tokens still to go through the model before the next token can be sampled. */
    public int remaining() { return numTokens - numComputed; }

    public int cachedPromptTokens() { return cachedPromptTokens; }

    public void setCachedPromptTokens(int n) { cachedPromptTokens = n; }

    public void append(int token) {
        if (numTokens == tokens.length) tokens = Arrays.copyOf(tokens, tokens.length * 2);
        tokens[numTokens++] = token;
    }

    public State state() { return state; }

    public void setState(State s) { state = s; }

    public FinishReason finishReason() { return finishReason; }

    public void finish(FinishReason reason) {
        state = State.FINISHED;
        finishReason = reason;
    }

    public boolean cancelRequested() { return cancelRequested; }

    /** Marks the sequence as having left the queue for good; true the first time only. */
    public boolean markAdmitted() {
        if (admitted) return false;
        admitted = true;
        return true;
    }

    public void requestCancel() { cancelRequested = true; }

    public KvStream handover() { return handover; }

    public void setHandover(KvStream stream) { handover = stream; }

    // ---- KV blocks (managed by KvCacheManager) ----

    public int numBlocks() { return numBlocks; }

    public int block(int i) { return blocks[i]; }

    public int[] blockTable() { return Arrays.copyOf(blocks, numBlocks); }

    public void addBlock(int b) {
        if (numBlocks == blocks.length) blocks = Arrays.copyOf(blocks, blocks.length * 2);
        blocks[numBlocks++] = b;
    }

    /** Drops the last block from the table and returns it (the caller returns it to the pool). */
    public int removeLastBlock() { return blocks[--numBlocks]; }

    public void clearBlocks() {
        numBlocks = 0;
        numHashedBlocks = 0;
        lastBlockHash = 0;
    }

    public int numHashedBlocks() { return numHashedBlocks; }

    public long lastBlockHash() { return lastBlockHash; }

    public void markHashed(long hash) {
        numHashedBlocks++;
        lastBlockHash = hash;
    }
}
