package dev.tandem.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/** The machine-readable outputs: summary.json, requests.csv (one row per request) and timeseries.csv (one row per second). */
public final class ResultFiles {
    private ResultFiles() {}

    public static void summaryJson(Path file, RunSummary summary) throws IOException {
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(file.toFile(), summary);
    }

    public static void requestsCsv(Path file, List<RequestRecord> records, UnloadedBaseline base) throws IOException {
        try (BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            w.write("id,trace_line,scheduled_s,sent_s,late_s,prompt_tokens,server_prompt_tokens,max_tokens,output_tokens,"
                    + "usage_reported,chunks,ttft_s,mean_tbt_s,e2e_s,http_status,good,error\n");
            for (RequestRecord r : records) {
                w.write(String.format(Locale.ROOT, "%d,%d,%.6f,%.6f,%.6f,%d,%d,%d,%d,%b,%d,%s,%s,%.6f,%d,%b,%s%n",
                        r.id(), r.traceLine(), r.scheduledS(), r.sentS(), r.lateS(), r.promptTokens(), r.serverPromptTokens(),
                        r.maxTokens(), r.outputTokens(), r.usageReported(), r.chunkTimesS().length, num(r.ttftS()), num(r.meanTbtS()),
                        r.e2eS(), r.httpStatus(), SloReport.isGood(base, r), r.ok() ? "" : quote(r.error())));
            }
        }
    }

    public static void timeSeriesCsv(Path file, TimeSeries s) throws IOException {
        try (BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            w.write("second,output_tokens,input_tokens,completed,max_in_flight\n");
            for (int i = 0; i < s.outputTokensPerS().length; i++) {
                w.write(String.format(Locale.ROOT, "%d,%.1f,%.1f,%d,%d%n", i, s.outputTokensPerS()[i], s.inputTokensPerS()[i],
                        s.completedPerS()[i], s.maxInFlight()[i]));
            }
        }
    }

    private static String num(double d) {
        return Double.isNaN(d) ? "" : String.format(Locale.ROOT, "%.6f", d);
    }

    private static String quote(String s) {
        return "\"" + s.replace("\"", "\"\"").replace('\n', ' ').replace('\r', ' ') + "\"";
    }
}
