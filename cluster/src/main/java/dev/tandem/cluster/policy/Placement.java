package dev.tandem.cluster.policy;

/**
 * Where a request runs: its prompt phase on {@code promptWorker}, its token phase on
 * {@code tokenWorker}. Both ids are equal when the request stays on one (mixed) worker, in which
 * case there is no KV hand-over.
 */
public record Placement(int promptWorker, int tokenWorker) {
    public boolean colocated() {
        return promptWorker == tokenWorker;
    }
}
