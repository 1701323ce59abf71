package dev.tandem.server.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `tandem simulate` and `tandem plan-cluster` as a user runs them. */
class SimulateCliTest {
    @Test
    void flagFormPrintsOneJsonSummaryAndWritesReportCsvAndChart(@TempDir Path dir) throws Exception {
        CliTest.Result r = CliTest.run("simulate", "--design", "splitwise-ha", "--prompt-machines", "3", "--token-machines", "2",
                "--model", "llama2-70b", "--trace", "conv", "--rate", "8", "--duration", "30", "--seed", "4", "--json",
                "--out", dir.toString());
        assertEquals(0, r.code(), r.err());
        JsonNode s = new ObjectMapper().readTree(r.out());
        assertEquals("splitwise-ha", s.get("name").asText());
        assertEquals(5, s.get("machines").asInt());
        assertEquals(s.get("requests").asInt(), s.get("completed").asInt());
        assertEquals(9, s.get("slos").size());
        assertEquals(3 * 4.76 + 2 * 2.21, s.get("costPerHour").asDouble(), 1e-9);
        for (String f : new String[]{"report.md", "summary.json", "requests.csv", "pool-sizes.png"}) assertTrue(Files.size(dir.resolve(f)) > 0, f);
        assertEquals(s.get("requests").asInt() + 1, Files.readAllLines(dir.resolve("requests.csv")).size());
    }

    @Test
    void rateSweepWritesLatencyAndSloCharts(@TempDir Path dir) throws Exception {
        CliTest.Result r = CliTest.run("simulate", "--design", "baseline-a100", "--machines", "4", "--rates", "2,6,12",
                "--duration", "20", "--out", dir.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("| 6.00 |"), r.out());
        assertEquals(4, Files.readAllLines(dir.resolve("sweep.csv")).size());
        assertTrue(Files.size(dir.resolve("latency-vs-load.png")) > 0);
        assertTrue(Files.size(dir.resolve("slo-vs-rate.png")) > 0);
    }

    @Test
    void wrongPoolFlagsAreUsageErrors() {
        CliTest.Result r = CliTest.run("simulate", "--design", "splitwise-hh", "--machines", "4", "--no-files");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("splitwise-hh takes --prompt-machines N --token-machines M"), r.err());
        r = CliTest.run("simulate", "--design", "baseline-h200", "--machines", "4", "--no-files");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("unknown design 'baseline-h200'"), r.err());
    }

    @Test
    void planClusterFindsTheCheapestPoolsForAThroughput() {
        CliTest.Result r = CliTest.run("plan-cluster", "--model", "llama2-70b", "--trace", "conv", "--objective", "min-cost",
                "--throughput", "3", "--duration", "30", "--max-machines", "16");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("| baseline-a100 |"), r.out());
        assertTrue(r.out().contains("| splitwise-hhcap |"), r.out());
        assertTrue(r.out().contains("simulations in"), r.out());
    }
}
