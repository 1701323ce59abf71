package dev.tandem.engine.spec;

import dev.tandem.engine.sched.Sequence;

import java.util.List;

/**
 * Proposes draft tokens for a batch of decoding sequences. The target model then scores every proposal in one
 * forward pass ({@link Verifier}). Implementations keep whatever per-sequence state they need (a draft model's
 * KV cache) and are told how much of each proposal was accepted, so that state stays in step with the target's.
 * All calls come from the engine-loop thread.
 */
public interface Drafter extends AutoCloseable {
    /** One sequence that may speculate this step, with at most {@code k} draft tokens (k >= 1). */
    record Request(Sequence seq, int k) {}

    /**
     * Drafts for each request, in order: up to k tokens each (none is fine: that sequence decodes plainly).
     * {@code history} of the sequence is its committed tokens; drafts continue them.
     */
    List<Draft> propose(List<Request> requests);

    /** The target kept {@code accepted} of the {@code drafted} tokens proposed after the sequence's first {@code committed} tokens. */
    default void accepted(Sequence seq, int committed, int drafted, int accepted) {}

    /** The sequence left the engine (finished, cancelled, aborted): free what is held for it. */
    default void release(Sequence seq) {}

    /** Short name for logs and reports, e.g. "ngram" or "draft-model gutenberg-stories-llama-3m". */
    String name();

    @Override
    default void close() {}
}
