package dev.tandem.bench;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class TimeSeriesTest {
    private static RequestRecord request(double sent, double[] chunks, int tokens, double e2e) {
        return new RequestRecord(0, 2, sent, sent, 50, tokens, 50, tokens, true, chunks, e2e, 200, null);
    }

    @Test
    void bucketsTokensAndCountsRequestsInFlight() {
        // A: sent 0.2, chunks at 0.5 and 1.5 carrying 4 tokens, done at 1.8. B: sent 1.0, one chunk at 1.1 (2 tokens), done at 2.4.
        RequestRecord a = request(0.2, new double[] {0.3, 1.3}, 4, 1.6);
        RequestRecord b = request(1.0, new double[] {0.1}, 2, 1.4);
        TimeSeries s = TimeSeries.of(List.of(a, b));
        assertEquals(3, s.outputTokensPerS().length);
        assertArrayEquals(new double[] {2, 4, 0}, s.outputTokensPerS(), 1e-12);
        assertArrayEquals(new double[] {50, 50, 0}, s.inputTokensPerS(), 1e-12); // prompt counted at first token
        assertArrayEquals(new int[] {0, 1, 1}, s.completedPerS());
        assertArrayEquals(new int[] {1, 2, 1}, s.maxInFlight());
        assertEquals(2, s.peakInFlight());
        // 0.2-1.0: 1, 1.0-1.8: 2, 1.8-2.4: 1 over 2.2 s
        assertEquals((0.8 + 1.6 + 0.6) / 2.2, s.meanInFlight(), 1e-9);
        assertEquals(6, Arrays.stream(s.outputTokensPerS()).sum(), 1e-12);
    }

    @Test
    void aSecondWithoutEventsKeepsTheLevelCarriedIntoIt() {
        RequestRecord longOne = request(0.5, new double[] {3.0}, 1, 3.0); // in flight through seconds 1 and 2
        TimeSeries s = TimeSeries.of(List.of(longOne));
        assertArrayEquals(new int[] {1, 1, 1, 1}, s.maxInFlight());
    }
}
