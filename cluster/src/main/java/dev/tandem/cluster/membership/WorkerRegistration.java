package dev.tandem.cluster.membership;

import java.io.IOException;
import java.util.logging.Logger;

/**
 * A worker's entry in etcd: key {@code /tandem/workers/<address>} under a lease of {@code ttl} seconds, kept alive
 * three times per TTL. When etcd is unreachable the worker keeps serving and registers again once etcd is back.
 */
public final class WorkerRegistration implements AutoCloseable {
    public static final String PREFIX = "/tandem/workers/";
    private static final Logger LOG = Logger.getLogger(WorkerRegistration.class.getName());

    private final Etcd etcd;
    private final String address;
    private final long ttl;
    private final Thread keeper;
    private volatile long lease = -1;
    private volatile boolean closed;

    public WorkerRegistration(Etcd etcd, String address, long ttlSeconds) throws IOException {
        this.etcd = etcd;
        this.address = address;
        this.ttl = ttlSeconds;
        register();
        this.keeper = Thread.ofPlatform().daemon().name("tandem-etcd-lease").start(this::keep);
    }

    private void register() throws IOException {
        lease = etcd.grant(ttl);
        etcd.put(PREFIX + address, address, lease);
    }

    private void keep() {
        boolean reachable = true;
        while (!closed) {
            try {
                Thread.sleep(Math.max(100, ttl * 1000 / 3));
                if (lease < 0 || !etcd.keepAlive(lease)) register();
                if (!reachable) LOG.info("worker: etcd at " + etcd.url() + " is back; registered again as " + address);
                reachable = true;
            } catch (IOException e) {
                if (reachable) LOG.warning("worker: etcd at " + etcd.url() + " is unreachable (" + e.getMessage() + "); serving on, will register again");
                reachable = false;
                lease = -1;
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        keeper.interrupt();
        try {
            if (lease >= 0) etcd.revoke(lease);
        } catch (IOException ignored) {
            // the lease expires by itself
        }
    }
}
