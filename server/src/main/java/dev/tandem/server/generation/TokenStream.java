package dev.tandem.server.generation;

import dev.tandem.engine.FinishReason;
import dev.tandem.engine.TokenEvent;
import dev.tandem.engine.TokenListener;

import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The hand-off between the engine loop and the thread that answers the HTTP request: the listener side only
 * timestamps and enqueues (never blocks the engine), the request side takes events in order.
 */
public final class TokenStream implements TokenListener {
    /** What the engine reported, with the time it did (System.nanoTime) for latency metrics. */
    public sealed interface Event {}

    public record Token(TokenEvent event, long nanos) implements Event {}

    public record Finished(FinishReason reason, int promptTokens, int generatedTokens, int cachedPromptTokens, long nanos) implements Event {}

    public record Failed(Throwable error) implements Event {}

    private final LinkedBlockingQueue<Event> queue = new LinkedBlockingQueue<>();

    @Override
    public void onToken(TokenEvent token) { queue.add(new Token(token, System.nanoTime())); }

    @Override
    public void onFinish(FinishReason reason, int promptTokens, int generatedTokens, int cachedPromptTokens) {
        queue.add(new Finished(reason, promptTokens, generatedTokens, cachedPromptTokens, System.nanoTime()));
    }

    @Override
    public void onError(Throwable error) { queue.add(new Failed(error)); }

    private volatile long scheduledNanos;
    private volatile boolean scheduled;

    /** Only timestamped: read with the first token (the engine calls this before that token's onToken). */
    @Override
    public void onScheduled() {
        scheduledNanos = System.nanoTime();
        scheduled = true;
    }

    /** Whether the engine said when the prompt first entered a step (remote gRPC workers do not). */
    public boolean scheduled() { return scheduled; }

    /** When the prompt first entered a step (System.nanoTime); meaningful once {@link #scheduled}. */
    public long scheduledNanos() { return scheduledNanos; }

    /** The next event, or null when none came within the timeout. */
    public Event poll(long timeout, TimeUnit unit) throws InterruptedException { return queue.poll(timeout, unit); }
}
