package dev.tandem.bench;

import org.junit.jupiter.api.Test;

import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LatencyStatsTest {
    @Test
    void percentilesInterpolateLinearlyLikeNumpy() {
        double[] oneToHundred = IntStream.rangeClosed(1, 100).asDoubleStream().toArray();
        LatencyStats s = LatencyStats.of(oneToHundred);
        assertEquals(100, s.count());
        assertEquals(50.5, s.mean(), 1e-12);
        assertEquals(50.5, s.p50(), 1e-12);  // numpy.percentile(range(1, 101), 50)
        assertEquals(90.1, s.p90(), 1e-12);
        assertEquals(99.01, s.p99(), 1e-12);
        assertEquals(1, s.min());
        assertEquals(100, s.max());
        assertEquals(2.5, LatencyStats.of(new double[] {4, 1, 3, 2}).p50(), 1e-12); // unsorted input
        assertEquals(7, LatencyStats.percentile(new double[] {7}, 99));
        assertEquals(3, LatencyStats.percentile(new double[] {1, 3}, 100));
        assertEquals(1, LatencyStats.percentile(new double[] {1, 3}, 0));
    }

    @Test
    void nanIsLeftOutAndEmptyIsNan() {
        LatencyStats s = LatencyStats.of(new double[] {Double.NaN, 2, Double.NaN, 4});
        assertEquals(2, s.count());
        assertEquals(3, s.p50(), 1e-12);
        LatencyStats empty = LatencyStats.of(new double[0]);
        assertEquals(0, empty.count());
        assertTrue(Double.isNaN(empty.p99()) && Double.isNaN(empty.mean()));
    }
}
