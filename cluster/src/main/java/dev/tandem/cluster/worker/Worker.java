package dev.tandem.cluster.worker;

import dev.tandem.engine.EngineLoad;
import dev.tandem.engine.EngineStats;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.RequestHandle;
import dev.tandem.engine.Role;
import dev.tandem.engine.TokenListener;
import dev.tandem.engine.handover.Reservation;
import dev.tandem.engine.transport.KvTransferStats;

import java.time.Duration;

/**
 * One worker as the router drives it: an engine in this JVM ({@link LocalWorker}) or in another process. Calls
 * return at once; tokens and outcomes come through the listeners, and a worker that dies fails them (onError).
 */
public interface Worker extends AutoCloseable {
    /** Index in the cluster, 0-based, stable. */
    int id();

    /** The pool the worker was started for. */
    Role homeRole();

    /** The pool it serves now. */
    Role role();

    /** Moves it to another pool (Splitwise's mixed pool); work already accepted finishes as it started. */
    void setRole(Role role);

    boolean healthy();

    /** Routing inputs as of its last report. */
    EngineLoad load();

    EngineStats stats();

    /** What this worker's KV transport sent (prompt side). */
    KvTransferStats kvStats();

    /** Where prompt workers send KV for this worker's reservations. */
    String kvAddress();

    /** Runs a request whole here (colocated, or a recompute after a failure). */
    RequestHandle submit(GenerationRequest request, TokenListener listener);

    /** Prefills here, emits the first token, then hands the sequence to reservation {@code reservation} at {@code kvAddress}. */
    RequestHandle prefill(GenerationRequest request, TokenListener listener, String kvAddress, long reservation, Duration timeout);

    /** Reserves blocks for a sequence whose prompt runs elsewhere; throws IllegalStateException when they are not free. */
    Reservation reserve(GenerationRequest request, TokenListener listener, Duration timeout);

    @Override
    void close();
}
