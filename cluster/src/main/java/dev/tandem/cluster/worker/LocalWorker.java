package dev.tandem.cluster.worker;

import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineLoad;
import dev.tandem.engine.EngineStats;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.RequestHandle;
import dev.tandem.engine.Role;
import dev.tandem.engine.TokenListener;
import dev.tandem.engine.handover.HandoverTarget;
import dev.tandem.engine.handover.Reservation;
import dev.tandem.engine.transport.KvTransferStats;
import dev.tandem.engine.transport.KvTransport;

import java.time.Duration;

/** A worker in this JVM: its own engine, sending KV over {@code transport}, receiving it at {@code kvAddress}. */
public final class LocalWorker implements Worker {
    private final int id;
    private final Role homeRole;
    private final Engine engine;
    private final KvTransport transport;
    private final String kvAddress;
    private final AutoCloseable onClose;
    private volatile boolean closed;

    /** @param onClose released after the engine (its backend, a KV server); may be null */
    public LocalWorker(int id, Engine engine, KvTransport transport, String kvAddress, AutoCloseable onClose) {
        this.id = id;
        this.homeRole = engine.role();
        this.engine = engine;
        this.transport = transport;
        this.kvAddress = kvAddress;
        this.onClose = onClose;
    }

    public Engine engine() { return engine; }

    @Override
    public int id() { return id; }

    @Override
    public Role homeRole() { return homeRole; }

    @Override
    public Role role() { return engine.role(); }

    @Override
    public void setRole(Role role) { engine.setRole(role); }

    @Override
    public boolean healthy() { return !closed; }

    @Override
    public EngineLoad load() { return engine.load(); }

    @Override
    public EngineStats stats() { return engine.stats(); }

    @Override
    public KvTransferStats kvStats() { return transport.stats(); }

    @Override
    public String kvAddress() { return kvAddress; }

    @Override
    public RequestHandle submit(GenerationRequest request, TokenListener listener) { return engine.submit(request, listener); }

    @Override
    public RequestHandle prefill(GenerationRequest request, TokenListener listener, String kvAddress, long reservation, Duration timeout) {
        return engine.submit(request, listener, new HandoverTarget(transport, kvAddress, reservation, timeout));
    }

    @Override
    public Reservation reserve(GenerationRequest request, TokenListener listener, Duration timeout) {
        return engine.reserve(request, listener, timeout);
    }

    /** Stops the worker at once: running requests fail (their listeners get onError), as when a process dies. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        engine.close();
        if (onClose != null) {
            try {
                onClose.close();
            } catch (Exception ignored) {
                // best effort: the worker is gone either way
            }
        }
    }
}
