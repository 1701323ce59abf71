package dev.tandem.bench;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ArrivalScheduleTest {
    private static final List<TraceRow> ROWS = TraceReader.read(Shared.conv());

    @Test
    void replayKeepsTheTracesOwnArrivalsAndSizes() {
        List<PlannedRequest> plan = ArrivalSchedule.replay(ROWS, 0, 0);
        assertEquals(ROWS.size(), plan.size());
        for (int i = 0; i < plan.size(); i += 997) {
            assertEquals(ROWS.get(i).arrivalS(), plan.get(i).offsetS());
            assertEquals(ROWS.get(i).promptTokens(), plan.get(i).promptTokens());
            assertEquals(ROWS.get(i).outputTokens(), plan.get(i).outputTokens());
            assertEquals(i, plan.get(i).index());
        }
    }

    @Test
    void replayStopsAtDurationAndAtMaxRequests() {
        List<PlannedRequest> minute = ArrivalSchedule.replay(ROWS, 60, 0);
        assertTrue(minute.getLast().offsetS() < 60);
        assertTrue(ROWS.get(minute.size()).arrivalS() >= 60);
        assertEquals(25, ArrivalSchedule.replay(ROWS, 60, 25).size());
    }

    @Test
    void poissonIsSeededAndHasTheAskedMeanRate() {
        double rate = 5;
        List<PlannedRequest> a = ArrivalSchedule.poisson(ROWS, rate, 7, 0, 40_000);
        List<PlannedRequest> b = ArrivalSchedule.poisson(ROWS, rate, 7, 0, 40_000);
        List<PlannedRequest> c = ArrivalSchedule.poisson(ROWS, rate, 8, 0, 40_000);
        assertEquals(a, b);
        assertNotEquals(a.get(1).offsetS(), c.get(1).offsetS());
        assertEquals(0.0, a.get(0).offsetS());
        // 40,000 gaps: the mean gap's standard error is 0.5%; allow 2%.
        double meanGap = a.getLast().offsetS() / (a.size() - 1);
        assertEquals(1 / rate, meanGap, 0.02 / rate);
        // Exponential gaps: standard deviation equals the mean (coefficient of variation 1).
        double sumSq = 0;
        for (int i = 1; i < a.size(); i++) {
            double d = a.get(i).offsetS() - a.get(i - 1).offsetS() - meanGap;
            sumSq += d * d;
        }
        assertEquals(1.0, Math.sqrt(sumSq / (a.size() - 2)) / meanGap, 0.03);
    }

    @Test
    void poissonTakesSizesFromTheTraceInOrderAndWrapsAround() {
        List<TraceRow> three = ROWS.subList(0, 3);
        List<PlannedRequest> plan = ArrivalSchedule.poisson(three, 100, 1, 0, 7);
        assertEquals(7, plan.size());
        for (int i = 0; i < 7; i++) {
            assertEquals(three.get(i % 3).promptTokens(), plan.get(i).promptTokens());
            assertEquals(three.get(i % 3).outputTokens(), plan.get(i).outputTokens());
        }
    }

    @Test
    void poissonStopsAtDurationOrOnePassOverTheTrace() {
        List<PlannedRequest> plan = ArrivalSchedule.poisson(ROWS, 10, 3, 30, 0);
        assertTrue(plan.getLast().offsetS() < 30);
        assertEquals(300, plan.size(), 60); // about rate x duration
        assertEquals(ROWS.size(), ArrivalSchedule.poisson(ROWS, 10, 3, 0, 0).size());
    }
}
