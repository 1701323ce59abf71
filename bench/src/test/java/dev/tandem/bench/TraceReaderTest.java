package dev.tandem.bench;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TraceReaderTest {
    @TempDir
    Path tmp;

    @Test
    void readsEveryRowOfTheRealTraces() {
        List<TraceRow> conv = TraceReader.read(Shared.conv());
        List<TraceRow> code = TraceReader.read(Shared.code());
        assertEquals(19366, conv.size());
        assertEquals(8819, code.size());
        assertEquals(new TraceRow(2, 0.0, 374, 44), conv.get(0));
        assertEquals(396, conv.get(1).promptTokens());
        assertEquals(109, conv.get(1).outputTokens());
        assertEquals(3, conv.get(1).line()); // the header is line 1
        assertEquals(new TraceRow(2, 0.0, 4808, 10), code.get(0));
    }

    @Test
    void readsTheRequestsABenchRunSentForReplay() throws IOException {
        Path f = tmp.resolve("requests.csv");
        Files.writeString(f, """
                id,trace_line,scheduled_s,sent_s,late_s,prompt_tokens,server_prompt_tokens,max_tokens,output_tokens,usage_reported,chunks,ttft_s,mean_tbt_s,e2e_s,http_status,good,error
                1,3,0.084569,0.085444,0.000875,396,397,109,109,true,109,0.211759,0.012964,1.611928,200,false,
                0,2,0.000000,0.011116,0.011116,374,374,44,44,true,44,0.107473,0.007809,0.443766,200,true,
                2,4,0.5,0.5,0,10,10,7,0,false,0,0,0,0,500,false,"worker failed, twice"
                """);
        List<TraceRow> rows = TraceReader.read(f);
        assertEquals(3, rows.size());
        assertEquals(new TraceRow(3, 0.0, 374, 44), rows.get(0)); // in arrival order; the server's prompt count
        assertEquals(new TraceRow(2, 0.084569, 397, 109), rows.get(1));
        assertEquals(new TraceRow(4, 0.5, 10, 7), rows.get(2)); // a failed request still arrived, asking for 7
        Files.writeString(f, "id,scheduled_s,prompt_tokens,max_tokens\n1,soon,3,4\n");
        BenchException e = assertThrows(BenchException.class, () -> TraceReader.read(f));
        assertTrue(e.getMessage().contains("line 2, column 2 (scheduled_s): 'soon' is not a time in seconds"), e.getMessage());
    }

    @Test
    void arrivalsAreSecondsAfterTheFirstRowToTheTenthOfAMicrosecond() {
        List<TraceRow> conv = TraceReader.read(Shared.conv());
        // 18:15:50.9951690 - 18:15:46.6805900
        assertEquals(4.3145790, conv.get(1).arrivalS(), 1e-9);
        // README: conv spans 18:15:46.68 -> 19:14:08.40, code 18:17:03.98 -> 19:14:19.93
        assertEquals(3501.7, conv.getLast().arrivalS(), 0.05);
        assertEquals(3435.9, TraceReader.read(Shared.code()).getLast().arrivalS(), 0.05);
        // code's second row: 18:17:04.0319600 - 18:17:03.9799600
        assertEquals(0.052, TraceReader.read(Shared.code()).get(1).arrivalS(), 1e-9);
        for (int i = 1; i < conv.size(); i++) assertTrue(conv.get(i).arrivalS() >= conv.get(i - 1).arrivalS(), "sorted at row " + i);
    }

    @Test
    void acceptsFewerFractionDigitsAndAnOffsetAsIn2024Traces() throws IOException {
        Path f = write("TIMESTAMP,ContextTokens,GeneratedTokens\n2024-05-10 00:00:00.009930+00:00,10,2\n2024-05-10 00:00:01+00:00,5,1\n2024-05-10 02:00:02.5+02:00,5,1\n");
        List<TraceRow> rows = TraceReader.read(f);
        assertEquals(0.99007, rows.get(1).arrivalS(), 1e-9);
        assertEquals(2.49007, rows.get(2).arrivalS(), 1e-9);
    }

    @Test
    void malformedRowNamesLineAndColumn() throws IOException {
        Path f = write("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:47.0,abc,44\n");
        BenchException e = assertThrows(BenchException.class, () -> TraceReader.read(f));
        assertTrue(e.getMessage().endsWith("line 3, column 2 (ContextTokens): 'abc' is not a non-negative integer"), e.getMessage());

        Path g = write("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 25:15,1,44\n");
        e = assertThrows(BenchException.class, () -> TraceReader.read(g));
        assertTrue(e.getMessage().contains("line 3, column 1 (TIMESTAMP): '2023-11-16 25:15' is not a timestamp"), e.getMessage());

        Path h = write("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374\n");
        e = assertThrows(BenchException.class, () -> TraceReader.read(h));
        assertTrue(e.getMessage().contains("line 2: expected 3 columns, found 2"), e.getMessage());

        Path i = write("TIME,Prompt,Output\n2023-11-16 18:15:46.6805900,374,4\n");
        e = assertThrows(BenchException.class, () -> TraceReader.read(i));
        assertTrue(e.getMessage().contains("line 1: no column 'TIMESTAMP'"), e.getMessage());
    }

    @Test
    void missingFileIsAClearError() {
        BenchException e = assertThrows(BenchException.class, () -> TraceReader.read(tmp.resolve("nope.csv")));
        assertTrue(e.getMessage().endsWith("nope.csv: trace file not found"), e.getMessage());
    }

    @Test
    void scalingMultipliesRoundsAndKeepsAtLeastOneTokenEach() {
        TraceRow r = new TraceRow(2, 1.5, 1020, 129);
        assertEquals(new TraceRow(2, 1.5, 1020, 129), r.scaled(1, 2048));
        assertEquals(new TraceRow(2, 1.5, 102, 13), r.scaled(0.1, 512)); // 12.9 rounds to 13
        assertEquals(new TraceRow(2, 1.5, 1, 1), new TraceRow(2, 1.5, 2, 7).scaled(0.01, 512));
    }

    @Test
    void clampingShrinksBothInProportionToFitTheContextExactly() {
        TraceRow big = new TraceRow(5, 0, 14050, 1000).scaled(1, 512);
        assertEquals(512, big.promptTokens() + big.outputTokens());
        assertEquals(477, big.promptTokens()); // floor(14050 * 512 / 15050)
        assertEquals(35, big.outputTokens());
        TraceRow longAnswer = new TraceRow(5, 0, 1, 1000).scaled(1, 512);
        assertEquals(new TraceRow(5, 0, 1, 511), longAnswer);
        // Every real row fits after scaling, and none loses its last token.
        for (TraceRow row : TraceReader.read(Shared.conv())) {
            TraceRow s = row.scaled(0.5, 256);
            assertTrue(s.promptTokens() >= 1 && s.outputTokens() >= 1 && s.promptTokens() + s.outputTokens() <= 256, s.toString());
        }
    }

    private Path write(String text) throws IOException {
        Path f = Files.createTempFile(tmp, "trace", ".csv");
        Files.writeString(f, text);
        return f;
    }
}
