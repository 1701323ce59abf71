package dev.tandem.cluster.device;

import dev.tandem.cuda.CudaException;
import dev.tandem.cuda.Nccl;

import java.lang.foreign.MemorySegment;
import java.util.logging.Logger;

/**
 * One rank's NCCL communicator that may be aborted from another thread: every call and the abort take one lock,
 * and after the abort no call reaches the (freed) communicator; they fail at once, naming the first failure.
 */
final class GuardedComm {
    private static final Logger LOG = Logger.getLogger(GuardedComm.class.getName());

    private final Nccl nccl = Nccl.get();
    private final MemorySegment comm;
    /** What this side of the path is, for messages ("NCCL path to worker-1"). */
    private final String what;
    private final Object lock = new Object();
    private volatile String failure;

    GuardedComm(MemorySegment comm, String what) {
        this.comm = comm;
        this.what = what;
    }

    boolean healthy() { return failure == null; }

    /** Throws IllegalStateException once aborted. */
    void check() {
        if (failure != null) throw new IllegalStateException("the " + what + " failed earlier: " + failure);
    }

    void send(long buf, long bytes, int peer, MemorySegment stream) {
        synchronized (lock) {
            check();
            nccl.send(buf, bytes, peer, comm, stream);
        }
    }

    void recv(long buf, long bytes, int peer, MemorySegment stream) {
        synchronized (lock) {
            check();
            nccl.recv(buf, bytes, peer, comm, stream);
        }
    }

    /** Throws if aborted or if NCCL reports an asynchronous error (a peer or a link failed). */
    void health() {
        synchronized (lock) {
            check();
            nccl.checkAsync(comm, what);
        }
    }

    /** Aborts the communicator once (ending its pending and stuck kernels); false if it was already aborted. */
    boolean abort(String reason) {
        synchronized (lock) {
            if (failure != null) return false;
            failure = reason;
            LOG.warning(what + " aborted: " + reason);
            try {
                nccl.abort(comm);
            } catch (CudaException e) {
                LOG.warning("ncclCommAbort: " + e.getMessage());
            }
            return true;
        }
    }

    /** Frees a healthy communicator whose work is done. */
    void destroy() {
        if (healthy()) nccl.destroy(comm);
    }
}
