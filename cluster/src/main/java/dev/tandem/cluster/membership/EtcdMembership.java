package dev.tandem.cluster.membership;

import dev.tandem.cluster.router.Router;
import dev.tandem.cluster.rpc.RemoteWorker;

import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;

/**
 * The router's view of etcd: lists the workers' keys every {@code every}; a new key adds a worker to the router, a
 * vanished one (its lease expired: the worker died or lost etcd) marks it down, a returning one brings it back.
 * When etcd itself is unreachable the router keeps the last membership it saw and says so ({@link #degraded}).
 */
public final class EtcdMembership implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(EtcdMembership.class.getName());

    private final Etcd etcd;
    private final Router router;
    private final Duration every;
    private final Map<String, RemoteWorker> known = new ConcurrentHashMap<>();
    private final Thread watcher;
    private volatile Instant unreachableSince;
    private volatile boolean closed;

    public EtcdMembership(Etcd etcd, Router router, Duration every) {
        this.etcd = etcd;
        this.router = router;
        this.every = every;
        refresh();
        this.watcher = Thread.ofPlatform().daemon().name("tandem-etcd-watch").start(this::watch);
    }

    private void watch() {
        while (!closed) {
            try {
                Thread.sleep(every.toMillis());
            } catch (InterruptedException e) {
                return;
            }
            refresh();
        }
    }

    private void refresh() {
        Map<String, String> now;
        try {
            now = etcd.list(WorkerRegistration.PREFIX);
        } catch (IOException e) {
            if (unreachableSince == null) {
                unreachableSince = Instant.now();
                LOG.warning("router: etcd at " + etcd.url() + " is unreachable (" + e.getMessage() + "); serving with the last known "
                        + known.size() + " workers");
            }
            return;
        }
        if (unreachableSince != null) LOG.info("router: etcd at " + etcd.url() + " is back");
        unreachableSince = null;
        for (String address : now.values()) {
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
        for (Map.Entry<String, RemoteWorker> e : known.entrySet()) {
            if (!now.containsValue(e.getKey()) && e.getValue().member()) {
                LOG.warning("router: worker " + e.getKey() + " left (its etcd lease expired)");
                e.getValue().setMember(false);
            }
        }
    }

    /** Null while etcd answers; else a line for /health. */
    public String degraded() {
        Instant since = unreachableSince;
        return since == null ? null : "etcd at " + etcd.url() + " unreachable since " + since + "; serving with the last known " + known.size() + " workers";
    }

    @Override
    public void close() {
        closed = true;
        watcher.interrupt();
    }
}
