package dev.tandem.cluster.rpc;

import dev.tandem.cluster.worker.Worker;
import dev.tandem.engine.EngineLoad;
import dev.tandem.engine.EngineStats;
import dev.tandem.engine.FinishReason;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.RequestHandle;
import dev.tandem.engine.Role;
import dev.tandem.engine.TokenListener;
import dev.tandem.engine.handover.KvTransferException;
import dev.tandem.engine.handover.Reservation;
import dev.tandem.engine.transport.KvTransferStats;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;

import java.time.Duration;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Logger;

/**
 * A worker in another process, driven over the control plane. Its load is polled every {@code pollEvery}; a worker
 * that misses three polls in a row (or leaves the membership) turns unhealthy and every call still open to it fails
 * at once, so that the router recomputes those requests elsewhere instead of waiting on a dead peer.
 */
public final class RemoteWorker implements Worker {
    private static final Logger LOG = Logger.getLogger(RemoteWorker.class.getName());
    private static final EngineLoad NONE = new EngineLoad(Role.MIXED, 0, 0, 0, 0, 0, 0, 0);

    private final int id;
    private final String target;
    private final ManagedChannel channel;
    private final Set<Call> open = ConcurrentHashMap.newKeySet();
    private final Duration pollEvery;
    private final Thread poller;
    private volatile Messages.Info info;
    private volatile int missed;
    private volatile boolean member = true, closed;

    /** Connects and waits (up to {@code connectTimeout}) for the worker's first report. */
    public RemoteWorker(int id, String target, Duration pollEvery, Duration connectTimeout) {
        this.id = id;
        this.target = target;
        this.pollEvery = pollEvery;
        this.channel = NettyChannelBuilder.forTarget(target).usePlaintext().build();
        long end = System.nanoTime() + connectTimeout.toNanos();
        while (info == null && System.nanoTime() < end) {
            poll();
            if (info == null) sleep(100);
        }
        this.poller = Thread.ofPlatform().daemon().name("tandem-poll-" + target).start(this::pollLoop);
    }

    public String target() { return target; }

    /**
     * Asks the worker at {@code target} for its model's served name, format, context length and tokenizer files: what a
     * router started without --model needs. Throws the gRPC status when the worker does not answer or cannot send them.
     */
    public static Messages.ModelInfo modelInfo(String target, Duration timeout) {
        // A tokenizer.json reaches ~10 MB (base64 in JSON): above gRPC's 4 MiB default for one message.
        ManagedChannel ch = NettyChannelBuilder.forTarget(target).usePlaintext().maxInboundMessageSize(256 << 20).build();
        try {
            return ClientCalls.blockingUnaryCall(ch, WorkerRpc.MODEL, CallOptions.DEFAULT.withWaitForReady()
                    .withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS), new Messages.Empty());
        } finally {
            ch.shutdownNow();
        }
    }

    public boolean member() { return member; }

    /** Membership (etcd) says the worker is gone, or back. */
    public void setMember(boolean member) {
        this.member = member;
        if (!member) failOpenCalls("worker " + target + " left the membership (its lease expired)");
    }

    private void pollLoop() {
        while (!closed) {
            sleep(pollEvery.toMillis());
            boolean was = healthy();
            poll();
            if (was && !healthy()) {
                LOG.warning("router: worker " + target + " stopped answering; failing its " + open.size() + " open calls");
                failOpenCalls("worker " + target + " stopped answering");
            }
        }
    }

    private void poll() {
        try {
            info = ClientCalls.blockingUnaryCall(channel, WorkerRpc.INFO, CallOptions.DEFAULT.withDeadlineAfter(1, TimeUnit.SECONDS), new Messages.Empty());
            missed = 0;
        } catch (StatusRuntimeException e) {
            missed++;
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void failOpenCalls(String why) {
        for (Call c : open) c.fail(why);
    }

    @Override
    public int id() { return id; }

    @Override
    public Role homeRole() { return info == null ? Role.MIXED : Role.valueOf(info.homeRole()); }

    @Override
    public Role role() { return info == null ? Role.MIXED : Role.valueOf(info.role()); }

    @Override
    public void setRole(Role role) {
        ClientCalls.blockingUnaryCall(channel, WorkerRpc.SET_ROLE, CallOptions.DEFAULT.withDeadlineAfter(2, TimeUnit.SECONDS), new Messages.SetRole(role.name()));
        poll();
    }

    @Override
    public boolean healthy() { return !closed && member && info != null && missed < 3; }

    @Override
    public EngineLoad load() {
        Messages.Info i = info;
        return i == null ? NONE : i.load();
    }

    @Override
    public EngineStats stats() {
        Messages.Info i = info;
        return i == null ? new EngineStats(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) : i.stats();
    }

    @Override
    public KvTransferStats kvStats() {
        Messages.Info i = info;
        return i == null ? new KvTransferStats() : KvTransferStats.of(i.kvBytesSent(), i.kvBlocksSent(), i.kvTransfers(), i.kvFailures(), i.kvSeconds());
    }

    @Override
    public String kvAddress() {
        Messages.Info i = info;
        if (i == null) throw new IllegalStateException("worker " + target + " has not reported yet");
        return i.kvAddress();
    }

    @Override
    public RequestHandle submit(GenerationRequest request, TokenListener listener) {
        return start(Messages.Submit.of(Messages.Mode.WHOLE, request, null, 0, 0), listener);
    }

    @Override
    public RequestHandle prefill(GenerationRequest request, TokenListener listener, String kvAddress, long reservation, Duration timeout) {
        return start(Messages.Submit.of(Messages.Mode.PREFILL, request, kvAddress, reservation, timeout.toMillis()), listener);
    }

    @Override
    public Reservation reserve(GenerationRequest request, TokenListener listener, Duration timeout) {
        Call call = start(Messages.Submit.of(Messages.Mode.RESERVE, request, null, 0, timeout.toMillis()), listener);
        long rid;
        try {
            rid = call.reserved.get(2, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            call.cancel();
            throw new IllegalStateException(e.getCause().getMessage(), e.getCause());
        } catch (TimeoutException | InterruptedException e) {
            call.cancel();
            throw new IllegalStateException("worker " + target + " did not answer a reservation within 2 s");
        }
        return new Reservation() {
            public long id() { return rid; }

            public void recompute(int[] tokens) {
                try {
                    ClientCalls.blockingUnaryCall(channel, WorkerRpc.RECOMPUTE, CallOptions.DEFAULT.withDeadlineAfter(2, TimeUnit.SECONDS),
                            new Messages.Recompute(rid, tokens));
                } catch (StatusRuntimeException e) {
                    throw new IllegalStateException("worker " + target + " could not recompute reservation " + rid + ": " + e.getStatus(), e);
                }
            }

            public void cancel() { call.cancel(); }
        };
    }

    private Call start(Messages.Submit submit, TokenListener listener) {
        if (!healthy()) throw new IllegalStateException("worker " + target + " is not healthy");
        Call c = new Call(listener);
        open.add(c);
        c.call = channel.newCall(WorkerRpc.SUBMIT, CallOptions.DEFAULT);
        ClientCalls.asyncServerStreamingCall(c.call, submit, c);
        return c;
    }

    /**
     * One Submit stream: events become listener calls; it ends exactly once (finish, error, or our cancel). gRPC
     * calls the observer methods one at a time; no lock is held while the listener runs, so that the router may
     * cancel from inside its own locks.
     */
    private final class Call implements StreamObserver<Messages.Event>, RequestHandle {
        private final TokenListener listener;
        final CompletableFuture<Long> reserved = new CompletableFuture<>();
        volatile ClientCall<Messages.Submit, Messages.Event> call;
        private final java.util.concurrent.atomic.AtomicBoolean ended = new java.util.concurrent.atomic.AtomicBoolean();

        Call(TokenListener listener) { this.listener = listener; }

        @Override
        public long id() { return reserved.getNow(-1L); }

        @Override
        public void onNext(Messages.Event e) {
            if (ended.get()) return;
            switch (e.kind()) {
                case RESERVED -> reserved.complete(e.reservation());
                case TOKEN -> listener.onToken(e.token());
                case FINISH -> end(() -> listener.onFinish(FinishReason.valueOf(e.reason()), e.promptTokens(), e.generated(), e.cached()));
                case ERROR -> {
                    RuntimeException x = switch (e.failure()) {
                        case INVALID -> new IllegalArgumentException(e.error());
                        case TRANSFER -> new KvTransferException(e.error(), null);
                        case REFUSED, WORKER -> new IllegalStateException("worker " + target + ": " + e.error());
                    };
                    reserved.completeExceptionally(x);
                    end(() -> listener.onError(x));
                }
            }
        }

        @Override
        public void onError(Throwable t) {
            fail("worker " + target + " call failed: " + t.getMessage());
        }

        @Override
        public void onCompleted() {
            fail("worker " + target + " ended a request without finishing it");
        }

        void fail(String why) {
            IllegalStateException x = new IllegalStateException(why);
            reserved.completeExceptionally(x);
            end(() -> listener.onError(x));
            if (call != null) call.cancel(why, null);
        }

        @Override
        public void cancel() {
            end(() -> listener.onFinish(FinishReason.CANCELLED, 0, 0, 0));
            if (call != null) call.cancel("cancelled by the router", null);
        }

        private void end(Runnable last) {
            if (!ended.compareAndSet(false, true)) return;
            open.remove(this);
            try {
                last.run();
            } catch (RuntimeException ignored) {
                // a listener's failure must not break the stream's bookkeeping
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        failOpenCalls("the router closed its connection to " + target);
        channel.shutdownNow();
    }
}
