package dev.tandem.engine;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StepLogTest {
    @Test
    void stepsAreSummedByKind() {
        StepLog log = new StepLog("engine mixed on cpu", Long.MAX_VALUE);
        log.step(2048, 0, 60_000_000, 50_000_000);
        log.step(1000, 0, 30_000_000, 20_000_000);
        log.step(0, 32, 7_000_000, 1_000_000);
        log.step(512, 16, 20_000_000, 15_500_000);
        String line = log.line(System.nanoTime());
        assertTrue(line.startsWith("engine mixed on cpu over "), line);
        assertTrue(line.contains(" prefill 2 steps, mean 45.00 ms (max 60.00), 1524 prompt + 0.0 decode tokens, forward call 35.00 ms;"), line);
        assertTrue(line.contains(" decode 1 steps, mean 7.00 ms (max 7.00), 0 prompt + 32.0 decode tokens, forward call 1.00 ms;"), line);
        assertTrue(line.contains(" mixed 1 steps, mean 20.00 ms (max 20.00), 512 prompt + 16.0 decode tokens, forward call 15.50 ms;"), line);
    }

    @Test
    void thePropertyTurnsItOnAndABadValueIsNamed() {
        String was = System.getProperty("tandem.stepLog");
        try {
            System.clearProperty("tandem.stepLog");
            assertNull(StepLog.fromProperty("e"));
            System.setProperty("tandem.stepLog", "2");
            assertTrue(StepLog.fromProperty("e") != null);
            System.setProperty("tandem.stepLog", "often");
            var e = assertThrows(IllegalArgumentException.class, () -> StepLog.fromProperty("e"));
            assertEquals("tandem.stepLog must be a number of seconds, got 'often'", e.getMessage());
        } finally {
            if (was == null) System.clearProperty("tandem.stepLog");
            else System.setProperty("tandem.stepLog", was);
        }
    }
}
