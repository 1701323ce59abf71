package dev.tandem.bench;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SloReportTest {
    /** Unloaded: TTFT 100 ms, 10 ms per token, so a 11-token request takes 200 ms alone. */
    private static final UnloadedBaseline BASE = new UnloadedBaseline(3, 100, 11, 0.100, 0.010, 0.200);

    /** A completed request: first token at ttft, then 10 more tokens one chunk each, tbt apart. */
    private static RequestRecord request(int id, double ttft, double tbt) {
        double[] chunks = new double[11];
        for (int i = 0; i < chunks.length; i++) chunks[i] = ttft + i * tbt;
        return new RequestRecord(id, id + 2, id, id, 100, 11, 100, 11, true, chunks, chunks[10] + 0.001, 200, null);
    }

    private static RequestRecord failed(int id) {
        return new RequestRecord(id, id + 2, id, id, 100, 11, -1, 0, false, new double[0], 0.05, 500, "HTTP 500: boom");
    }

    @Test
    void unloadedE2eOfARequestScalesWithItsOwnOutput() {
        assertEquals(0.100, BASE.expectedE2eS(1), 1e-12);
        assertEquals(0.200, BASE.expectedE2eS(11), 1e-12);
        assertEquals(1.090, BASE.expectedE2eS(100), 1e-12);
    }

    @Test
    void unloadedTtftFollowsThePromptLengthWhereItWasMeasuredAtSeveralLengths() {
        // measured: 100 tokens 0.100 s (the median run), 20 tokens 0.060 s, 900 tokens 0.500 s
        UnloadedBaseline b = BASE.withTtftAt(java.util.Map.of(20, List.of(request(0, 0.060, 0.010)), 900, List.of(request(1, 0.500, 0.010))));
        assertEquals(3, b.ttftCurve().size());
        assertEquals(0.060, b.ttftFor(5), 1e-12);    // below the shortest: its TTFT
        assertEquals(0.080, b.ttftFor(60), 1e-12);   // halfway between 20 and 100
        assertEquals(0.300, b.ttftFor(500), 1e-12);  // halfway between 100 and 900
        assertEquals(0.550, b.ttftFor(1000), 1e-12); // beyond: the last segment's slope, 0.5 ms per token
        assertEquals(0.550 + 10 * 0.010, b.expectedE2eS(1000, 11), 1e-12);
        assertEquals(0.100, BASE.ttftFor(5000), 1e-12); // one size measured: every prompt gets it
        // A 900-token prompt whose first token took 0.6 s is good against its own length (<= 3 x 0.5 s), not against the median's (0.1 s).
        RequestRecord longPrompt = new RequestRecord(7, 9, 0, 0, 900, 11, 900, 11, true, chunks(0.6, 0.010), 0.6 + 0.101, 200, null);
        assertTrue(SloReport.isGood(b, longPrompt));
        assertFalse(SloReport.isGood(BASE, longPrompt));
    }

    private static double[] chunks(double ttft, double tbt) {
        double[] c = new double[11];
        for (int i = 0; i < c.length; i++) c[i] = ttft + i * tbt;
        return c;
    }

    @Test
    void attainmentIsTheShareWithinTheLimitAndFailuresCountAgainstIt() {
        List<RequestRecord> rs = new ArrayList<>();
        // TTFT ratios: 6 at 1x, 2 at 2.5x, 1 at 5x, then one failure: 10 requests.
        for (int i = 0; i < 6; i++) rs.add(request(i, 0.100, 0.010));
        rs.add(request(6, 0.250, 0.010));
        rs.add(request(7, 0.250, 0.010));
        rs.add(request(8, 0.500, 0.010));
        rs.add(failed(9));
        SloReport r = SloReport.evaluate(BASE, rs, 10.0);
        SloReport.Result p50 = find(r, "TTFT", 50), p90 = find(r, "TTFT", 90), p99 = find(r, "TTFT", 99);
        assertEquals(0.6, p50.attainment(), 1e-12); // 6 of 10 within 2x
        assertEquals("met", p50.status());
        assertEquals(0.8, p90.attainment(), 1e-12); // 8 of 10 within 3x: P90 missed, the failure counts against it
        assertEquals("missed", p90.status());
        assertEquals(0.9, p99.attainment(), 1e-12); // 9 of 10 within 6x
        assertEquals("missed", p99.status());
        // Measured percentile over the 9 completed: sorted ratios 1,1,1,1,1,1,2.5,2.5,5 -> p50 = 1
        assertEquals(1.0, p50.measuredRatio(), 1e-9);
        assertEquals(3.0, p90.measuredRatio(), 1e-9); // rank 0.9 x 8 = 7.2: 2.5 + 0.2 x (5 - 2.5)
        // TBT: every gap is exactly unloaded, so all within even 1.25x
        assertEquals(1.0, find(r, "TBT", 99).attainment(), 1e-12);
    }

    @Test
    void goodputCountsRequestsWithinEveryP90Limit() {
        List<RequestRecord> rs = new ArrayList<>();
        rs.add(request(0, 0.100, 0.010));  // good
        rs.add(request(1, 0.300, 0.010));  // TTFT exactly 3x: good on TTFT; E2E 0.401 / 0.2 > 1.5x: not good
        rs.add(request(2, 0.100, 0.014));  // TBT 1.4x: good; E2E 0.241 / 0.2 = 1.2x: good
        rs.add(request(3, 0.100, 0.016));  // TBT 1.6x: not good
        rs.add(request(4, 0.150, 0.012));  // TTFT 1.5x, TBT 1.2x, E2E 0.271 / 0.2 = 1.36x: good
        rs.add(failed(5));
        SloReport r = SloReport.evaluate(BASE, rs, 2.0);
        assertTrue(SloReport.isGood(BASE, rs.get(0)));
        assertFalse(SloReport.isGood(BASE, rs.get(1)));
        assertTrue(SloReport.isGood(BASE, rs.get(2)));
        assertFalse(SloReport.isGood(BASE, rs.get(3)));
        assertTrue(SloReport.isGood(BASE, rs.get(4)));
        assertFalse(SloReport.isGood(BASE, rs.get(5)));
        assertEquals(3, r.goodRequests());
        assertEquals(1.5, r.goodputRps(), 1e-12);
        assertEquals(0.5, r.goodFraction(), 1e-12);
        assertEquals(9, r.results().size());
    }

    @Test
    void e2eIsJudgedAgainstTheRequestsOwnUnloadedTime() {
        // 101 tokens at the unloaded pace: E2E 1.1 s is 5.5x the median request's 0.2 s, but 1.0x its own.
        double[] chunks = new double[101];
        for (int i = 0; i < chunks.length; i++) chunks[i] = 0.1 + i * 0.010;
        RequestRecord longAnswer = new RequestRecord(0, 2, 0, 0, 100, 101, 100, 101, true, chunks, 1.1, 200, null);
        SloReport r = SloReport.evaluate(BASE, List.of(longAnswer), 1.1);
        assertEquals(1.1 / 1.1, find(r, "E2E", 50).measuredRatio(), 1e-9);
        assertEquals("met", find(r, "E2E", 50).status());
        assertTrue(SloReport.isGood(BASE, longAnswer));
    }

    private static SloReport.Result find(SloReport r, String metric, int level) {
        return r.results().stream().filter(x -> x.metric().equals(metric) && x.level() == level).findFirst().orElseThrow();
    }
}
