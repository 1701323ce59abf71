package dev.tandem.cluster.rpc;

import dev.tandem.cluster.device.DeviceKvHub;
import dev.tandem.cluster.device.DeviceKvServer;
import dev.tandem.cluster.device.DeviceKvTransport;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.tokenizer.Tokenizer;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineStats;
import dev.tandem.engine.FinishReason;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.GenerationService;
import dev.tandem.engine.RequestHandle;
import dev.tandem.engine.Role;
import dev.tandem.engine.TokenEvent;
import dev.tandem.engine.TokenListener;
import dev.tandem.engine.handover.HandoverTarget;
import dev.tandem.engine.handover.KvTransferException;
import dev.tandem.engine.handover.Reservation;
import dev.tandem.engine.transport.KvTransferStats;
import dev.tandem.engine.transport.KvTransport;
import dev.tandem.engine.transport.TcpKvServer;
import dev.tandem.engine.transport.TcpKvTransport;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.ServerCalls;
import io.grpc.stub.StreamObserver;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A worker process's network face: the control plane (gRPC "tandem.Worker": Info, SetRole, Submit, Recompute)
 * in front of its engine, a KV server that writes arriving hand-overs into its cache, and a KV transport for the
 * hand-overs it sends: TCP for a cache in host memory, NCCL for a cache on a GPU (the communicator's unique id sent
 * on a connection to the token worker's KV port, which then carries the layers' headers; the bytes go GPU to GPU).
 */
public final class WorkerNode implements AutoCloseable {
    private final Engine engine;
    private final Role homeRole;
    /** The KV port's server: TcpKvServer or DeviceKvServer, or null (a mixed worker with a device cache). */
    private final AutoCloseable kvServer;
    private final KvTransport transport;
    private final Server grpc;
    private final String kvAddress;
    private final Map<Long, Reservation> reservations = new ConcurrentHashMap<>();

    /**
     * @param host          address to bind
     * @param advertiseHost address other processes reach this one at
     */
    public WorkerNode(Engine engine, String host, int port, int kvPort, String advertiseHost) throws IOException {
        this(engine, null, host, port, kvPort, advertiseHost, null);
    }

    /**
     * @param backend the engine's backend: with a KV cache on a GPU (a {@link CudaBackend}), hand-overs go over NCCL
     * @param model   what the Model call answers (a router started without --model asks for it), or null to refuse it
     */
    public WorkerNode(Engine engine, Backend backend, String host, int port, int kvPort, String advertiseHost, Messages.ModelInfo model)
            throws IOException {
        this.engine = engine;
        this.homeRole = engine.role();
        if (engine.kvInHostMemory()) {
            TcpKvServer server = new TcpKvServer(engine.kvReceiver(), host, kvPort);
            this.kvServer = server;
            this.kvAddress = advertiseHost + ":" + server.port();
            this.transport = new TcpKvTransport(2000);
        } else if (homeRole == Role.MIXED) {
            // A colocated worker never hands over.
            this.kvServer = null;
            this.kvAddress = "none";
            this.transport = new TcpKvTransport(2000);
        } else if (backend instanceof CudaBackend cuda) {
            DeviceKvHub hub = new DeviceKvHub();
            DeviceKvServer server = new DeviceKvServer(cuda, engine.kvStorage(), engine.kvReceiver(), host, kvPort, hub);
            this.kvServer = server;
            this.kvAddress = advertiseHost + ":" + server.port();
            this.transport = new DeviceKvTransport(cuda, hub);
        } else {
            throw new IllegalStateException("a " + homeRole.name().toLowerCase(java.util.Locale.ROOT) + " worker hands KV over, and its cache is"
                    + " neither in host memory nor on a CUDA GPU this node knows (pass the engine's CudaBackend)");
        }
        ServerServiceDefinition service = ServerServiceDefinition.builder(WorkerRpc.SERVICE)
                .addMethod(WorkerRpc.INFO, ServerCalls.asyncUnaryCall((req, out) -> reply(out, info())))
                .addMethod(WorkerRpc.MODEL, ServerCalls.asyncUnaryCall((req, out) -> {
                    if (model != null) reply(out, model);
                    else out.onError(Status.FAILED_PRECONDITION.withDescription("this worker cannot send its model's tokenizer (a GGUF file or llama2.c checkpoint keeps it inside; "
                            + "Hugging Face folders and --tokenizer files can be sent): give the router --model").asRuntimeException());
                }))
                .addMethod(WorkerRpc.SET_ROLE, ServerCalls.asyncUnaryCall((req, out) -> {
                    engine.setRole(Role.valueOf(req.role()));
                    reply(out, new Messages.Empty());
                }))
                .addMethod(WorkerRpc.RECOMPUTE, ServerCalls.asyncUnaryCall(this::recompute))
                .addMethod(WorkerRpc.SUBMIT, ServerCalls.asyncServerStreamingCall(this::submit))
                .build();
        try {
            this.grpc = NettyServerBuilder.forAddress(new InetSocketAddress(host, port)).addService(service).build().start();
        } catch (IOException e) {
            closeKv();
            throw new IOException("cannot serve the control plane on " + host + ":" + port + ": " + e.getMessage(), e);
        }
    }

    public int port() { return grpc.getPort(); }

    /** The transport first: a device channel drains and frees its communicator while the receiving side still runs. */
    private void closeKv() {
        transport.close();
        if (kvServer != null) {
            try {
                kvServer.close();
            } catch (Exception ignored) {
                // closing anyway
            }
        }
    }

    public String kvAddress() { return kvAddress; }

    public Engine engine() { return engine; }

    public KvTransferStats kvStats() { return transport.stats(); }

    private static <T> void reply(StreamObserver<T> out, T value) {
        out.onNext(value);
        out.onCompleted();
    }

    private Messages.Info info() {
        KvTransferStats s = transport.stats();
        return new Messages.Info(engine.role().name(), homeRole.name(), kvAddress, engine.contextLength(), engine.load(), engine.stats(),
                s.bytesSent(), s.blocksSent(), s.handovers(), s.failures(), s.latencySecondsSum());
    }

    private void recompute(Messages.Recompute req, StreamObserver<Messages.Empty> out) {
        Reservation r = reservations.get(req.reservation());
        if (r == null) {
            out.onError(Status.NOT_FOUND.withDescription("no reservation " + req.reservation() + " on this worker").asRuntimeException());
            return;
        }
        try {
            r.recompute(req.tokens());
            reply(out, new Messages.Empty());
        } catch (RuntimeException e) {
            out.onError(Status.FAILED_PRECONDITION.withDescription(e.getMessage()).asRuntimeException());
        }
    }

    private void submit(Messages.Submit req, StreamObserver<Messages.Event> out) {
        ServerCallStreamObserver<Messages.Event> call = (ServerCallStreamObserver<Messages.Event>) out;
        Events events = new Events(call);
        GenerationRequest request;
        try {
            request = req.request();
            switch (req.mode()) {
                case WHOLE -> {
                    RequestHandle h = engine.submit(request, events);
                    call.setOnCancelHandler(h::cancel);
                }
                case PREFILL -> {
                    RequestHandle h = engine.submit(request, events,
                            new HandoverTarget(transport, req.kvAddress(), req.reservation(), Duration.ofMillis(req.timeoutMillis())));
                    call.setOnCancelHandler(h::cancel);
                }
                case RESERVE -> {
                    Reservation r = engine.reserve(request, events, Duration.ofMillis(req.timeoutMillis()));
                    reservations.put(r.id(), r);
                    events.onReserved(r.id());
                    call.setOnCancelHandler(r::cancel);
                }
            }
        } catch (IllegalArgumentException e) {
            events.error(Messages.Failure.INVALID, e.getMessage());
        } catch (java.io.UncheckedIOException e) {
            events.error(Messages.Failure.TRANSFER, e.getMessage()); // the token worker's KV server cannot be reached
        } catch (RuntimeException e) {
            events.error(Messages.Failure.REFUSED, e.getMessage());
        }
    }

    /** One Submit's stream: the engine's callbacks become events; the end of the request ends the call. */
    private final class Events implements TokenListener {
        private final ServerCallStreamObserver<Messages.Event> call;
        private long reservation = -1;
        private boolean ended;

        Events(ServerCallStreamObserver<Messages.Event> call) { this.call = call; }

        synchronized void onReserved(long id) {
            reservation = id;
            send(Messages.Event.reserved(id));
        }

        @Override
        public synchronized void onToken(TokenEvent t) { send(Messages.Event.token(t)); }

        @Override
        public synchronized void onFinish(FinishReason reason, int promptTokens, int generatedTokens, int cachedPromptTokens) {
            end(Messages.Event.finish(reason.name(), promptTokens, generatedTokens, cachedPromptTokens));
        }

        @Override
        public synchronized void onError(Throwable error) {
            error(error instanceof KvTransferException ? Messages.Failure.TRANSFER : Messages.Failure.WORKER, String.valueOf(error.getMessage()));
        }

        synchronized void error(Messages.Failure f, String message) { end(Messages.Event.error(f, message)); }

        private void send(Messages.Event e) {
            if (ended || call.isCancelled()) return;
            try {
                call.onNext(e);
            } catch (RuntimeException ignored) {
                // the router went away; the cancel handler frees the request
            }
        }

        private void end(Messages.Event e) {
            send(e);
            if (ended) return;
            ended = true;
            if (reservation >= 0) reservations.remove(reservation);
            try {
                if (!call.isCancelled()) call.onCompleted();
            } catch (RuntimeException ignored) {
                // see send
            }
        }
    }

    /** The worker as the HTTP front end sees it: the engine, plus its KV transfer figures on /metrics. */
    public GenerationService service() {
        return new GenerationService() {
            public Tokenizer tokenizer() { return engine.tokenizer(); }

            public int contextLength() { return engine.contextLength(); }

            public EngineStats stats() { return engine.stats(); }

            public RequestHandle submit(GenerationRequest request, TokenListener listener) { return engine.submit(request, listener); }

            public void shutdown(Duration grace) { engine.shutdown(grace); }

            public void close() { engine.close(); }

            public List<Metric> extraMetrics() {
                KvTransferStats s = transport.stats();
                var l = engine.load();
                return List.of(
                        new Metric("tandem:worker_role", "Pool the worker serves now: 0 prompt, 1 token, 2 mixed.", false, engine.role().ordinal()),
                        new Metric("tandem:kv_transfer_bytes_total", "KV-cache bytes this worker sent to token workers.", true, s.bytesSent()),
                        new Metric("tandem:kv_transfers_total", "Sequences this worker handed over.", true, s.handovers()),
                        new Metric("tandem:kv_transfer_seconds_total", "Sum over hand-overs of the time from the first token to the hand-over sent (transfer not hidden by compute).", true, s.latencySecondsSum()),
                        new Metric("tandem:kv_transfer_failures_total", "Hand-overs that failed or passed their deadline.", true, s.failures()),
                        new Metric("tandem:kv_received_bytes_total", "KV-cache bytes written into this worker's reserved blocks.", true, l.kvBytesReceived()),
                        new Metric("tandem:kv_reservations", "Sequences whose blocks are reserved here, waiting for their KV.", false, l.reserved()));
            }
        };
    }

    @Override
    public void close() {
        grpc.shutdownNow();
        closeKv();
    }
}
