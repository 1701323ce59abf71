package dev.tandem.cuda;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The NCCL binding on real GPUs: a two-rank communicator over a unique id passed by value, bytes moved exactly by
 * ncclSend / ncclRecv, a receive that nobody sends to seen as stuck by polling and ended by ncclCommAbort, and errors
 * that name the call. Skips without CUDA and NCCL; the transfer cases need two GPUs.
 */
class NcclTest {
    static CudaDriver cuda;
    static Nccl nccl;

    @BeforeAll
    static void gpu() {
        String why = CudaDriver.unavailableReason();
        if (why == null) why = Nccl.unavailableReason();
        if (why != null) System.err.println("NcclTest skipped: " + why + "; it runs on the GPU machine");
        assumeTrue(why == null, "skipped: " + why);
        cuda = CudaDriver.get();
        nccl = Nccl.get();
    }

    /** Communicator and stream of one rank, made on a thread of its own with its device current. */
    record Rank(MemorySegment comm, MemorySegment stream) {}

    static CompletableFuture<Rank> join(int device, byte[] id, int rank) {
        CompletableFuture<Rank> f = new CompletableFuture<>();
        Thread.ofPlatform().start(() -> {
            try {
                cuda.usePrimaryContext(cuda.device(device));
                f.complete(new Rank(nccl.initRank(2, id, rank), cuda.createStream()));
            } catch (Throwable t) {
                f.completeExceptionally(t);
            }
        });
        return f;
    }

    /** rank 0 sends n bytes at src to rank 1's dst, both calls made at once on threads of their own; waits for both. */
    static void exchange(Rank r0, long src, Rank r1, long dst, long n) throws Exception {
        CompletableFuture<Void> recv = CompletableFuture.runAsync(() -> {
            cuda.usePrimaryContext(cuda.device(1));
            nccl.recv(dst, n, 0, r1.comm(), r1.stream());
            cuda.synchronize(r1.stream());
        });
        CompletableFuture<Void> send = CompletableFuture.runAsync(() -> {
            cuda.usePrimaryContext(cuda.device(0));
            nccl.send(src, n, 1, r0.comm(), r0.stream());
            cuda.synchronize(r0.stream());
        });
        send.get(60, TimeUnit.SECONDS);
        recv.get(60, TimeUnit.SECONDS);
    }

    static void assumeTwoGpus() { assumeTrue(cuda.deviceCount() >= 2, "needs two GPUs, this machine has " + cuda.deviceCount()); }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void twoRanksOnTwoGpusMoveBytesExactly() throws Exception {
        assumeTwoGpus();
        byte[] id = nccl.uniqueId();
        assertEquals(Nccl.UNIQUE_ID_BYTES, id.length);
        CompletableFuture<Rank> f0 = join(0, id, 0), f1 = join(1, id, 1);
        Rank r0 = f0.get(60, TimeUnit.SECONDS), r1 = f1.get(60, TimeUnit.SECONDS);
        long n = (16L << 20) + 12345; // odd size: not a multiple of any vector width
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(n), back = a.allocate(n);
            for (long i = 0; i < n; i++) host.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 31 + 7));
            cuda.usePrimaryContext(cuda.device(0));
            long src = cuda.malloc(n);
            cuda.copyToDevice(src, host, n);
            cuda.usePrimaryContext(cuda.device(1));
            long dst = cuda.malloc(n);
            cuda.memset(dst, (byte) 0, n);
            // The two ranks call in at the same time, each on its own thread: NCCL connects a pair of peers lazily, on
            // their first transfer, and that handshake blocks each caller until the other one arrives.
            exchange(r0, src, r1, dst, n);
            cuda.copyToHost(back, dst, n);
            assertEquals(-1L, host.mismatch(back), "first differing byte");
            assertEquals(Nccl.SUCCESS, nccl.asyncError(r0.comm()));
            cuda.free(dst);
            cuda.usePrimaryContext(cuda.device(0));
            cuda.free(src);
            System.out.printf("NCCL %d: %d bytes cuda:0 -> cuda:1 exact%n", nccl.version(), n);
        }
        // Both ranks free their communicators at once, each with its GPU current.
        CompletableFuture<Void> d = CompletableFuture.runAsync(() -> {
            cuda.usePrimaryContext(cuda.device(1));
            nccl.destroy(r1.comm());
        });
        cuda.usePrimaryContext(cuda.device(0));
        nccl.destroy(r0.comm());
        d.get(30, TimeUnit.SECONDS);
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aReceiveNobodySendsToStaysPendingUntilTheCommunicatorIsAborted() throws Exception {
        assumeTwoGpus();
        byte[] id = nccl.uniqueId();
        CompletableFuture<Rank> f0 = join(0, id, 0), f1 = join(1, id, 1);
        Rank r0 = f0.get(60, TimeUnit.SECONDS), r1 = f1.get(60, TimeUnit.SECONDS);
        cuda.usePrimaryContext(cuda.device(0));
        long src = cuda.malloc(1 << 20);
        cuda.usePrimaryContext(cuda.device(1));
        long dst = cuda.malloc(1 << 20);
        exchange(r0, src, r1, dst, 1 << 20); // connects the pair, so the receive below only waits for data
        cuda.usePrimaryContext(cuda.device(1));
        nccl.recv(dst, 1 << 20, 0, r1.comm(), r1.stream());
        MemorySegment done = cuda.createEvent();
        cuda.recordEvent(done, r1.stream());
        long until = System.nanoTime() + 500_000_000L;
        while (System.nanoTime() < until) {
            assertFalse(cuda.eventDone(done), "a receive without a sender completed");
            Thread.sleep(10);
        }
        assertEquals(Nccl.SUCCESS, nccl.asyncError(r1.comm()), "nothing failed: the transfer is just stuck");
        nccl.abort(r1.comm());
        nccl.abort(r0.comm());
        long end = System.nanoTime() + 10_000_000_000L;
        while (!cuda.eventDone(done) && System.nanoTime() < end) Thread.sleep(10);
        assertTrue(cuda.eventDone(done), "the stuck receive ended with the abort");
        cuda.destroyEvent(done);
        cuda.free(dst);
        cuda.usePrimaryContext(cuda.device(0));
        cuda.free(src);
    }

    @Test
    void failuresNameTheCall() {
        assertThrows(IllegalArgumentException.class, () -> nccl.initRank(2, new byte[16], 0));
        cuda.usePrimaryContext(cuda.device(0));
        CudaException e = assertThrows(CudaException.class, () -> nccl.initRank(2, nccl.uniqueId(), 5));
        assertTrue(e.getMessage().startsWith("ncclCommInitRank(rank 5 of 2) failed"), e.getMessage());
    }
}
