package dev.tandem.server.generation;

import dev.tandem.engine.RequestHandle;
import dev.tandem.server.metrics.RequestTimer;

import java.util.concurrent.TimeUnit;

/**
 * One submitted request, seen from the thread that answers it: {@link #next} turns the engine's events into
 * output steps (text, logprobs, and at the end finish_reason and usage). A stop string cancels the engine request
 * at once; closing a run that has not finished (client gone, server stopping) cancels it too.
 */
public final class GenerationRun implements AutoCloseable {
    /** Output to send; {@code finishReason} and {@code usage} are set on the last step only. */
    public record Step(OutputAssembler.Delta delta, String finishReason, Usage usage) {
        public boolean last() { return finishReason != null; }
    }

    private final Generator owner;
    private final RequestHandle handle;
    private final TokenStream stream;
    private final OutputAssembler output;
    private final RequestTimer timer;
    private final int promptTokens;
    private boolean finished;

    GenerationRun(Generator owner, RequestHandle handle, TokenStream stream, OutputAssembler output, RequestTimer timer, int promptTokens) {
        this.owner = owner;
        this.handle = handle;
        this.stream = stream;
        this.output = output;
        this.timer = timer;
        this.promptTokens = promptTokens;
    }

    /**
     * The next non-empty step, or null when nothing came within {@code timeout} (the caller may then check that its
     * client is still there). Throws {@link GenerationFailedException} when the engine failed.
     */
    public Step next(long timeout, TimeUnit unit) throws InterruptedException {
        if (finished) throw new IllegalStateException("the generation has finished");
        long deadline = System.nanoTime() + unit.toNanos(timeout);
        while (true) {
            TokenStream.Event event = stream.poll(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            switch (event) {
                case null -> {
                    return null;
                }
                case TokenStream.Token t -> {
                    if (output.stopped()) continue; // produced before our cancellation reached the engine
                    timer.onToken(t.nanos(), stream.scheduled(), stream.scheduledNanos());
                    OutputAssembler.Delta d = output.accept(t.event());
                    if (output.stopped()) cancel();
                    if (!d.isEmpty()) return new Step(d, null, null);
                }
                case TokenStream.Finished f -> {
                    finished = true;
                    owner.done(this);
                    OutputAssembler.Delta d = output.finish();
                    String reason = output.stopped() ? "stop" : f.reason().openAi();
                    int completion = output.stopped() ? output.tokens() : f.generatedTokens();
                    int prompt = f.promptTokens() > 0 ? f.promptTokens() : promptTokens;
                    timer.onFinish(reason, f.nanos());
                    return new Step(d, reason, new Usage(prompt, completion, f.cachedPromptTokens()));
                }
                case TokenStream.Failed x -> {
                    finished = true;
                    owner.done(this);
                    throw new GenerationFailedException(x.error());
                }
            }
        }
    }

    /** Asks the engine to drop the request; its KV blocks are freed at the next step. */
    public void cancel() { handle.cancel(); }

    /** Cancels the request unless it has finished; always safe to call. */
    @Override
    public void close() {
        if (!finished) {
            handle.cancel();
            owner.done(this);
        }
    }
}
