package dev.tandem.cluster.router;

import dev.tandem.cluster.policy.Placement;
import dev.tandem.cluster.worker.Worker;
import dev.tandem.engine.FinishReason;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.RequestHandle;
import dev.tandem.engine.TokenEvent;
import dev.tandem.engine.TokenListener;
import dev.tandem.engine.handover.KvTransferException;
import dev.tandem.engine.handover.Reservation;

import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.HashSet;
import java.util.Set;
import java.util.TreeMap;

/**
 * One client request inside the router. Its tokens reach the client strictly in order and once each, whichever
 * worker produced them: the first from the prompt worker, the rest from the token worker, and after a failure
 * from wherever the rest is recomputed (prompt plus the tokens already sent). Each placement is an attempt;
 * events of an abandoned attempt are ignored.
 */
final class RoutedRequest {
    private final Router router;
    final long id;
    private final GenerationRequest request;
    private final TokenListener client;
    final long placementDeadline;
    private int[] delivered = new int[16];
    private int count;
    /** Tokens that arrived ahead of their turn (two workers' streams may interleave). */
    private final TreeMap<Integer, TokenEvent> ahead = new TreeMap<>();
    private static final Logger LOG = Logger.getLogger(RoutedRequest.class.getName());
    private static final AtomicInteger LOGGED_TRACES = new AtomicInteger();
    private final Set<Integer> excluded = new HashSet<>();
    private int attemptNo;
    private Attempt attempt;
    private int failures;
    private Throwable lastFailure;
    private boolean done;
    private boolean scheduled; // the client was told the first prefill started

    RoutedRequest(Router router, long id, GenerationRequest request, TokenListener client, long placementDeadline) {
        this.router = router;
        this.id = id;
        this.request = request;
        this.client = client;
        this.placementDeadline = placementDeadline;
    }

    /** One placement of the request's remainder: on one worker, or split between a prompt and a token worker. */
    private final class Attempt {
        final int no = ++attemptNo;
        final int base = count;
        final Worker prompt, token;
        final int promptTokens;
        RequestHandle promptHandle, tokenHandle;
        Reservation reservation;
        boolean prefilled, released;
        int tokenSide;

        Attempt(Worker prompt, Worker token, int promptTokens) {
            this.prompt = prompt;
            this.token = token;
            this.promptTokens = promptTokens;
            router.placed().prompt(prompt.id(), promptTokens);
            router.placed().sequence(token.id(), 1);
        }

        void prefilled() {
            if (!prefilled) router.placed().prompt(prompt.id(), -promptTokens);
            prefilled = true;
        }

        /** Stops whatever still runs for this attempt and undoes its load accounting. */
        void abandon() {
            if (released) return;
            released = true;
            prefilled();
            router.placed().sequence(token.id(), -1);
            if (promptHandle != null) promptHandle.cancel();
            if (tokenHandle != null) tokenHandle.cancel();
            if (reservation != null) {
                try {
                    reservation.cancel();
                } catch (RuntimeException ignored) {
                    // the worker is gone: its reservation went with it
                }
            }
        }
    }

    /**
     * What is left to generate: the prompt plus the tokens already sent, and the rest of the budget; a sampled request's
     * seeded stream goes on after those tokens' draws, so a failover does not change what the client gets.
     */
    private GenerationRequest remainder() {
        return count == 0 ? request : request.continuedAfter(delivered, count);
    }

    /** Called by the router thread; true once the request no longer waits for a placement (placed, or failed). */
    synchronized boolean tryPlace() {
        if (done) return true;
        GenerationRequest rest = remainder();
        Placement placement;
        try {
            placement = router.place(rest, excluded).orElse(null);
        } catch (Router.UnservableException e) {
            // Name what made the workers give up on it: the router's own message only counts them.
            fail(lastFailure == null ? e : new Router.UnservableException(e.getMessage() + "; last failure: " + lastFailure, lastFailure));
            return true;
        }
        if (placement == null) {
            if (System.nanoTime() - placementDeadline > 0) {
                fail(new IllegalStateException("request " + id + ": no worker could take it within the placement timeout"
                        + (lastFailure == null ? "" : " (last failure: " + lastFailure.getMessage() + ")")));
                return true;
            }
            return false;
        }
        Worker p = router.worker(placement.promptWorker()), t = router.worker(placement.tokenWorker());
        Attempt a = new Attempt(p, t, rest.promptTokens().length);
        attempt = a;
        try {
            if (placement.colocated()) {
                a.promptHandle = p.submit(rest, whole(a));
            } else {
                a.reservation = t.reserve(rest, tokenSide(a), router.config().reservationTimeout());
                a.promptHandle = p.prefill(rest, promptSide(a), t.kvAddress(), a.reservation.id(), router.config().transferTimeout());
            }
            return true;
        } catch (IllegalArgumentException e) {
            a.abandon();
            fail(e); // the request itself is wrong (context, vocabulary): no worker will take it
            return true;
        } catch (RuntimeException e) {
            // A full cache (retry shortly) or a worker that stopped (placed elsewhere next time).
            a.abandon();
            attempt = null;
            if (!p.healthy()) excluded.add(p.id());
            if (!t.healthy()) excluded.add(t.id());
            lastFailure = e;
            return false;
        }
    }

    private TokenListener whole(Attempt a) {
        return new Listener(a) {
            void token(TokenEvent t) {
                a.prefilled();
                deliver(a.base + a.tokenSide++, t);
            }

            void finished(FinishReason r, int cached) { complete(r, cached); }

            void failed(Throwable e) { failover(a.prompt, e); }
        };
    }

    private TokenListener promptSide(Attempt a) {
        return new Listener(a) {
            void token(TokenEvent t) {
                a.prefilled();
                deliver(a.base, t);
            }

            void finished(FinishReason r, int cached) {
                if (r == FinishReason.HANDED_OVER) return;
                complete(r, cached); // EOS or the budget reached at the first token: the token worker's reservation goes
            }

            void failed(Throwable e) {
                if (count == a.base) {
                    // No first token: the prompt worker failed (try again elsewhere), unless it could not reach the
                    // token worker's KV receiver, which is then the one to avoid.
                    failover(e instanceof KvTransferException ? a.token : a.prompt, e);
                    return;
                }
                if (count > a.base + 1) return; // the token worker is decoding already: its hand-over arrived
                // The first token went out but the KV did not arrive: the token worker computes it itself.
                try {
                    int[] sent = remainder().promptTokens();
                    a.reservation.recompute(sent);
                    router.recomputed();
                } catch (RuntimeException gone) {
                    // The reservation ran out meanwhile (its expiry is on its way): a new one on the same worker.
                    if (a.token.healthy()) recomputeOnTokenWorker(a, gone);
                    else failover(a.token, gone);
                }
            }
        };
    }

    private TokenListener tokenSide(Attempt a) {
        return new Listener(a) {
            void token(TokenEvent t) { deliver(a.base + 1 + a.tokenSide++, t); }

            void finished(FinishReason r, int cached) { complete(r, cached); }

            void failed(Throwable e) {
                // The token worker dropped its reservation because no KV came (a stuck transfer whose prompt side has
                // not failed yet): the worker itself is fine, so it recomputes the sequence once the first token is out.
                if (e instanceof KvTransferException && a.token.healthy() && a.tokenSide == 0 && count == a.base + 1) {
                    recomputeOnTokenWorker(a, e);
                } else {
                    failover(a.token, e);
                }
            }
        };
    }

    /**
     * A split attempt whose KV never reached the token worker after the first token went out: that worker takes the
     * rest on a new reservation and computes the KV of everything sent itself, and the prompt side (still waiting on its
     * transfer) is cancelled.
     */
    private void recomputeOnTokenWorker(Attempt a, Throwable e) {
        Worker t = a.token;
        a.abandon();
        ahead.clear();
        lastFailure = e;
        router.reservationExpired();
        router.recomputed();
        Attempt b = new Attempt(t, t, 0);
        attempt = b;
        try {
            GenerationRequest before = a.base == 0 ? request : request.continuedAfter(delivered, a.base);
            b.reservation = t.reserve(before, whole(b), router.config().reservationTimeout());
            b.reservation.recompute(remainder().promptTokens());
        } catch (RuntimeException gone) {
            if (!t.healthy()) {
                failover(t, gone);
                return;
            }
            // No room on the token worker just now (a full cache): placed again shortly, nobody blamed.
            b.abandon();
            attempt = null;
            ahead.clear();
            lastFailure = gone;
            router.enqueue(this);
        }
    }

    /** Serializes a worker's callbacks with everything else and drops those of abandoned attempts. */
    private abstract class Listener implements TokenListener {
        private final Attempt a;

        Listener(Attempt a) { this.a = a; }

        abstract void token(TokenEvent t);

        abstract void finished(FinishReason r, int cached);

        abstract void failed(Throwable e);

        @Override
        public final void onToken(TokenEvent t) {
            synchronized (RoutedRequest.this) {
                if (!done && attempt == a) token(t);
            }
        }

        @Override
        public final void onFinish(FinishReason r, int promptTokens, int generated, int cached) {
            synchronized (RoutedRequest.this) {
                // CANCELLED only ever follows the router's own cancellation (or the client's, answered already).
                if (!done && attempt == a && r != FinishReason.CANCELLED) finished(r, cached);
            }
        }

        @Override
        public final void onError(Throwable e) {
            synchronized (RoutedRequest.this) {
                if (!done && attempt == a) failed(e);
            }
        }

        /** The first prefill of the request's first attempt (a failover's later prefill is not a new start). */
        @Override
        public final void onScheduled() {
            synchronized (RoutedRequest.this) { // under the lock: no other attempt's first token can overtake it
                if (done || attempt != a || scheduled) return;
                scheduled = true;
                try {
                    client.onScheduled();
                } catch (RuntimeException ignored) {
                    // a client's failure must not stop the request's bookkeeping
                }
            }
        }
    }

    private void deliver(int index, TokenEvent t) {
        if (index < count) return; // sent already (a recompute reproduced it)
        ahead.put(index, t);
        while (!ahead.isEmpty() && ahead.firstKey() == count) {
            TokenEvent next = ahead.pollFirstEntry().getValue();
            if (count == delivered.length) delivered = Arrays.copyOf(delivered, count * 2);
            delivered[count++] = next.token();
            try {
                client.onToken(next);
            } catch (RuntimeException ignored) {
                // a client's failure must not stop the request's bookkeeping
            }
        }
    }

    /** The worker running the attempt failed: the rest of the request is placed again, elsewhere. */
    private void failover(Worker failed, Throwable e) {
        Attempt a = attempt;
        attempt = null;
        if (a != null) a.abandon();
        ahead.clear(); // tokens the failed attempt sent early; the next one produces them again
        excluded.add(failed.id());
        lastFailure = e;
        String what = "request " + id + ": worker " + failed.id() + " failed it (" + e + "); placing it again";
        if (LOGGED_TRACES.getAndIncrement() < 5) LOG.log(Level.WARNING, what, e); // the first few with their stacks
        else LOG.warning(what);
        if (++failures > router.config().maxAttempts()) {
            fail(new IllegalStateException("request " + id + " failed " + failures + " times; last: " + e.getMessage(), e));
            return;
        }
        router.failedOver();
        router.enqueue(this);
    }

    private void complete(FinishReason reason, int cached) {
        done = true;
        Attempt a = attempt;
        if (a != null) a.abandon();
        ahead.clear();
        try {
            client.onFinish(reason, request.promptTokens().length, count, cached);
        } catch (RuntimeException ignored) {
            // see deliver
        }
    }

    private void fail(Throwable e) {
        done = true;
        if (attempt != null) attempt.abandon();
        try {
            client.onError(e);
        } catch (RuntimeException ignored) {
            // see deliver
        }
    }

    /** The client went away or a stop string matched. */
    synchronized void cancel() {
        if (done) return;
        complete(FinishReason.CANCELLED, 0);
    }

    synchronized void failNow(Throwable e) {
        if (!done) fail(e);
    }

    synchronized boolean done() { return done; }
}
