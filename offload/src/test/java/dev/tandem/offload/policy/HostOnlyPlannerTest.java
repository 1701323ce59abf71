package dev.tandem.offload.policy;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HostOnlyPlannerTest {
    static final long MB = 1L << 20;

    @Test
    void everythingInRamWhenItFits() {
        OffloadPolicy p = HostOnlyPlanner.plan(100 * MB, MB, 10 * MB, 8, 1024 * MB);
        assertEquals(8, p.blockSize());
        assertEquals(100, p.weightCpuPercent());
        assertEquals(0, p.weightDiskPercent());
    }

    @Test
    void weightsSpillToDiskFirstThenTheBlockShrinks() {
        // 200 MB left for weights after 40 MB of staging, 64 MB of scratch and 8 MB of cache: 200 of 400 MB in RAM.
        OffloadPolicy p = HostOnlyPlanner.plan(400 * MB, MB, 10 * MB, 8, 312 * MB);
        assertEquals(8, p.blockSize());
        assertEquals(50, p.weightCpuPercent());
        assertEquals(50, p.weightDiskPercent());
        // A cache too large for every sequence: the block holds what fits, the weights all go to disk.
        OffloadPolicy small = HostOnlyPlanner.plan(400 * MB, 100 * MB, 10 * MB, 8, 404 * MB);
        assertEquals(3, small.blockSize());
        assertTrue(small.weightCpuPercent() < 1);
    }

    @Test
    void tooLittleMemoryIsAClearError() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HostOnlyPlanner.plan(100 * MB, 100 * MB, 10 * MB, 2, 120 * MB));
        assertTrue(e.getMessage().contains("--cpu-mem"), e.getMessage());
    }
}
