package dev.tandem.core.backend.cpu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(60)
class CpuThreadPoolTest {

    @Test
    void everyIndexRunsExactlyOnce() {
        try (CpuThreadPool pool = new CpuThreadPool(3, 50_000)) {
            for (int n : new int[]{1, 2, 3, 7, 64, 1000}) {
                for (int rep = 0; rep < 200; rep++) {
                    AtomicIntegerArray hits = new AtomicIntegerArray(n);
                    pool.parallelFor(n, hits::incrementAndGet);
                    for (int i = 0; i < n; i++) assertEquals(1, hits.get(i), "index " + i + " of " + n);
                }
            }
        }
    }

    @Test
    void failuresPropagateAndThePoolSurvives() {
        try (CpuThreadPool pool = new CpuThreadPool(2, 50_000)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> pool.parallelFor(16, i -> {
                if (i == 9) throw new IllegalStateException("boom");
            }));
            assertEquals("boom", e.getMessage());
            AtomicInteger sum = new AtomicInteger();
            pool.parallelFor(100, sum::addAndGet);
            assertEquals(4950, sum.get());
        }
    }

    @Test
    void nestedLoopsRunSerially() {
        try (CpuThreadPool pool = new CpuThreadPool(2, 50_000)) {
            AtomicInteger count = new AtomicInteger();
            pool.parallelFor(8, i -> pool.parallelFor(8, j -> count.incrementAndGet()));
            assertEquals(64, count.get());
        }
    }

    /** A job published before the worker thread first looks must still be run by it (both tasks wait on each other). */
    @Test
    void firstJobRightAfterStartIsShared() {
        for (int rep = 0; rep < 50; rep++) {
            try (CpuThreadPool pool = new CpuThreadPool(2, 1_000_000)) {
                AtomicInteger arrived = new AtomicInteger();
                pool.parallelFor(2, i -> {
                    arrived.incrementAndGet();
                    while (arrived.get() < 2) Thread.onSpinWait();
                });
            }
        }
    }

    @Test
    void workersParkAndWakeUp() throws InterruptedException {
        try (CpuThreadPool pool = new CpuThreadPool(2, 1_000)) {
            Thread.sleep(20); // well past the spin time: the worker has parked
            AtomicIntegerArray hits = new AtomicIntegerArray(50);
            pool.parallelFor(50, hits::incrementAndGet);
            for (int i = 0; i < 50; i++) assertEquals(1, hits.get(i));
        }
    }

    @Test
    void closeStopsTheWorkers() throws InterruptedException {
        CpuThreadPool pool = new CpuThreadPool(3, 1_000_000);
        pool.parallelFor(10, i -> { });
        pool.close();
        Thread.sleep(50);
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            assertFalse(t.getName().startsWith("tandem-cpu-") && t.isAlive(), t.getName() + " still running");
        }
    }

    /**
     * Prints the cost of one dispatch in which both threads must take part (each task waits until the other
     * has started), i.e. the worker's wake-up and the hand-back; asserts only a loose bound (shared cores).
     */
    @Test
    void dispatchIsCheap() {
        try (CpuThreadPool pool = new CpuThreadPool(2, CpuThreadPool.DEFAULT_SPIN_NANOS)) {
            AtomicInteger arrived = new AtomicInteger();
            int[] round = {0};
            CpuThreadPool.Body body = i -> {
                int target = 2 * round[0];
                arrived.incrementAndGet();
                while (arrived.get() < target) Thread.onSpinWait();
            };
            int n = 20_000;
            long best = Long.MAX_VALUE;
            for (int rep = 0; rep < 10; rep++) {
                long t0 = System.nanoTime();
                for (int i = 0; i < n; i++) {
                    round[0]++;
                    pool.parallelFor(2, body);
                }
                best = Math.min(best, System.nanoTime() - t0);
            }
            double us = best / 1e3 / n;
            System.out.printf("CpuThreadPool: %.2f us per dispatch with both threads working%n", us);
            assertTrue(us < 200, "dispatch " + us + " us");
        }
    }
}
