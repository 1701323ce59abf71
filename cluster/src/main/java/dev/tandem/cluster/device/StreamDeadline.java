package dev.tandem.cluster.device;

import dev.tandem.cuda.CudaDriver;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;

/**
 * Waiting for a stream without trusting it to finish: device copies and NCCL transfers are queued, so a stuck peer
 * shows only as work that never completes. The waiter polls an event against a deadline (and a health check, e.g.
 * NCCL's asynchronous error) instead of blocking in cuStreamSynchronize, so that the caller can abort.
 */
final class StreamDeadline {
    private StreamDeadline() {}

    /** Waits until the work queued on {@code stream} so far is done; TimeoutException past {@code deadlineNanos}. */
    static void await(CudaDriver cuda, MemorySegment stream, long deadlineNanos, String what, Runnable healthCheck) throws TimeoutException {
        MemorySegment event = cuda.createEvent();
        try {
            cuda.recordEvent(event, stream);
            for (int polls = 0; !cuda.eventDone(event); polls++) {
                if (System.nanoTime() - deadlineNanos > 0) throw new TimeoutException(what + " did not finish before its deadline");
                if (healthCheck != null && polls % 64 == 63) healthCheck.run();
                // Spin briefly (a layer's copy takes tens of microseconds), then sleep in short steps.
                if (polls < 200) Thread.onSpinWait();
                else LockSupport.parkNanos(20_000);
            }
        } finally {
            cuda.destroyEvent(event);
        }
    }
}
