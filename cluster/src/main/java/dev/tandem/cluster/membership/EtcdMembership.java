package dev.tandem.cluster.membership;

import dev.tandem.cluster.router.Router;
import dev.tandem.cluster.rpc.RemoteWorker;

import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;

/**
 * The router's view of etcd: reads the workers' keys once, then watches them from that revision on, so a change
 * reaches the router as soon as etcd commits it. A new key adds a worker to the router, a deleted one (its lease
 * expired: the worker died or lost etcd) marks it down, a returning one brings it back. When etcd itself is
 * unreachable (the watch stream breaks and a fresh read fails) the router keeps the last membership it saw and says
 * so ({@link #degraded}), and tries again every {@code retry} until etcd answers; then it reads the keys afresh and
 * watches again.
 */
public final class EtcdMembership implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(EtcdMembership.class.getName());

    private final Etcd etcd;
    private final Router router;
    private final Duration retry;
    private final Map<String, RemoteWorker> known = new ConcurrentHashMap<>(); // by address
    private final Thread watcher;
    private volatile Etcd.Watch watch;
    private volatile Instant unreachableSince;
    private volatile boolean closed;

    /** @param retry how often to try etcd again while it is unreachable */
    public EtcdMembership(Etcd etcd, Router router, Duration retry) {
        this.etcd = etcd;
        this.router = router;
        this.retry = retry;
        long revision = refresh();
        this.watcher = Thread.ofPlatform().daemon().name("tandem-etcd-watch").start(() -> watchFrom(revision));
    }

    private void watchFrom(long revision) {
        while (!closed) {
            if (revision < 0) { // etcd was unreachable: wait, then read everything again
                try {
                    Thread.sleep(retry.toMillis());
                } catch (InterruptedException e) {
                    return;
                }
                revision = refresh();
                continue;
            }
            try (Etcd.Watch w = etcd.watch(WorkerRegistration.PREFIX, revision + 1)) {
                watch = w;
                if (closed) return;
                for (List<Etcd.Change> changes; (changes = w.next()) != null; ) {
                    for (Etcd.Change c : changes) {
                        String address = address(c.key());
                        if (c.value() == null) left(address);
                        else joined(address);
                    }
                }
            } catch (IOException e) {
                if (!closed) LOG.fine("router: etcd watch ended: " + e.getMessage());
            }
            if (closed) return;
            revision = refresh(); // the stream ended: etcd stopped (then this read fails and says so) or ended the watch
        }
    }

    /** Reads every worker key and brings the router in line; the revision read at, or -1 when etcd is unreachable. */
    private long refresh() {
        Etcd.Snapshot now;
        try {
            now = etcd.snapshot(WorkerRegistration.PREFIX);
        } catch (IOException e) {
            if (unreachableSince == null) {
                unreachableSince = Instant.now();
                LOG.warning("router: etcd at " + etcd.url() + " is unreachable (" + e.getMessage() + "); serving with the last known "
                        + known.size() + " workers");
            }
            return -1;
        }
        if (unreachableSince != null) LOG.info("router: etcd at " + etcd.url() + " is back");
        unreachableSince = null;
        var present = now.values().keySet().stream().map(EtcdMembership::address).toList();
        for (String address : present) joined(address);
        for (String address : known.keySet()) if (!present.contains(address)) left(address);
        return now.revision();
    }

    private void joined(String address) {
        RemoteWorker w = known.get(address);
        if (w == null) {
            try {
                w = (RemoteWorker) router.add(id -> new RemoteWorker(id, address, Duration.ofMillis(100), Duration.ofSeconds(5)));
                known.put(address, w);
                LOG.info("router: worker " + address + " joined as " + w.homeRole() + " (id " + w.id() + ")");
            } catch (RuntimeException e) {
                LOG.warning("router: cannot reach new worker " + address + ": " + e.getMessage());
            }
        } else if (!w.member()) {
            LOG.info("router: worker " + address + " is back in the membership");
            w.setMember(true);
        }
    }

    private void left(String address) {
        RemoteWorker w = known.get(address);
        if (w != null && w.member()) {
            LOG.warning("router: worker " + address + " left (its etcd lease expired)");
            w.setMember(false);
        }
    }

    /** A worker registers under {@code PREFIX + address}. */
    private static String address(String key) {
        return key.substring(WorkerRegistration.PREFIX.length());
    }

    /** Null while etcd answers; else a line for /health. */
    public String degraded() {
        Instant since = unreachableSince;
        return since == null ? null : "etcd at " + etcd.url() + " unreachable since " + since + "; serving with the last known " + known.size() + " workers";
    }

    /** Workers etcd lists now, as far as the router knows (for tests and logs). */
    public long members() {
        return known.values().stream().filter(RemoteWorker::member).count();
    }

    @Override
    public void close() {
        closed = true;
        Etcd.Watch w = watch;
        if (w != null) w.close();
        watcher.interrupt();
    }
}
