package dev.tandem.server.generation;

import dev.tandem.engine.GenerationService;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.RequestHandle;
import dev.tandem.server.metrics.ServerMetrics;

import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/** Submits requests to the engine (or a cluster's router) and keeps the running ones, so that a shutdown can cancel what is left. */
public final class Generator {
    private final GenerationService engine;
    private final ServerMetrics metrics;
    private final Set<GenerationRun> active = ConcurrentHashMap.newKeySet();

    public Generator(GenerationService engine, ServerMetrics metrics) {
        this.engine = engine;
        this.metrics = metrics;
    }

    public GenerationService engine() { return engine; }

    /**
     * Queues a request. Throws what {@link GenerationService#submit} throws: IllegalArgumentException (it can never fit),
     * QueueFullException (429), IllegalStateException (shutting down).
     *
     * @param arrivalNanos when the HTTP request arrived, for time to first token
     */
    public GenerationRun start(GenerationRequest request, List<String> stops, long arrivalNanos) {
        TokenStream stream = new TokenStream();
        int[] prompt = request.promptTokens();
        OutputAssembler output = new OutputAssembler(engine.tokenizer(), prompt[prompt.length - 1], stops, request.topLogprobs() >= 0);
        RequestHandle handle = engine.submit(request, stream);
        GenerationRun run = new GenerationRun(this, handle, stream, output, metrics.startRequest(arrivalNanos), prompt.length);
        active.add(run);
        return run;
    }

    void done(GenerationRun run) { active.remove(run); }

    /** Requests submitted and not yet finished. */
    public int active() { return active.size(); }

    /** Cancels every running request (shutdown deadline reached). */
    public void cancelAll() { active.forEach(GenerationRun::cancel); }
}
