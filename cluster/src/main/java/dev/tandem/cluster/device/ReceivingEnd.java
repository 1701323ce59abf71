package dev.tandem.cluster.device;

import dev.tandem.core.backend.KvStorage;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.engine.transport.KvReceiver;

/** A token worker as device transports see it: its backend (device, context), its cache and its reservations. */
record ReceivingEnd(String address, CudaBackend backend, KvStorage kv, KvReceiver receiver) {}
