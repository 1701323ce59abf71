package dev.tandem.engine.handover;

import dev.tandem.engine.transport.KvTransport;

import java.time.Duration;

/**
 * Where a prompt worker sends a sequence after its prefill: reservation {@code reservation} of the token worker
 * whose KV receiver is at {@code address} on {@code transport}; the whole transfer must be done within {@code timeout}.
 */
public record HandoverTarget(KvTransport transport, String address, long reservation, Duration timeout) {}
