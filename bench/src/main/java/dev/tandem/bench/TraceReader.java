package dev.tandem.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeFormatterBuilder;
import java.time.format.DateTimeParseException;
import java.time.temporal.ChronoField;
import java.time.temporal.TemporalAccessor;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Reads an Azure LLM inference trace: header {@code TIMESTAMP,ContextTokens,GeneratedTokens} (columns in any
 * order), timestamps like {@code 2023-11-16 18:15:46.6805900} (0-9 fractional digits; an optional
 * {@code +00:00} offset, as in the 2024 traces; no offset means UTC). Arrivals are made relative to the
 * first row. Every bad row is an error naming the line and column, never skipped.
 *
 * <p>Also reads the requests.csv that {@code tandem bench serve} writes ({@code scheduled_s}, {@code prompt_tokens}
 * or {@code server_prompt_tokens}, {@code max_tokens}): the very requests a real run sent, so that the simulator can
 * replay them and its prediction be checked against the run.
 */
public final class TraceReader {
    private static final DateTimeFormatter TIMESTAMP = new DateTimeFormatterBuilder()
            .append(DateTimeFormatter.ISO_LOCAL_DATE)
            .appendLiteral(' ')
            .appendPattern("HH:mm:ss")
            .optionalStart().appendFraction(ChronoField.NANO_OF_SECOND, 0, 9, true).optionalEnd()
            .optionalStart().appendOffset("+HH:MM", "Z").optionalEnd()
            .toFormatter(Locale.ROOT);

    private TraceReader() {}

    public static List<TraceRow> read(Path file) {
        if (!Files.isRegularFile(file)) throw new BenchException(file + ": trace file not found");
        try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String header = in.readLine();
            if (header == null) throw new BenchException(file + ": empty file, expected a header TIMESTAMP,ContextTokens,GeneratedTokens");
            String[] names = header.strip().replace("\uFEFF", "").split(",", -1);
            if (indexOf(names, "scheduled_s") >= 0) return readBenchRequests(in, names, file);
            int tCol = column(names, "TIMESTAMP", file), pCol = column(names, "ContextTokens", file), oCol = column(names, "GeneratedTokens", file);
            List<TraceRow> rows = new ArrayList<>();
            long firstNanos = 0;
            int lineNo = 1;
            for (String line; (line = in.readLine()) != null; ) {
                lineNo++;
                if (line.isBlank()) continue;
                String[] cells = line.split(",", -1);
                if (cells.length != names.length) {
                    throw new BenchException(file + ": line " + lineNo + ": expected " + names.length + " columns, found " + cells.length);
                }
                long nanos = timestampNanos(cells[tCol].strip(), file, lineNo, tCol, names[tCol]);
                int prompt = tokens(cells[pCol].strip(), file, lineNo, pCol, names[pCol]);
                int output = tokens(cells[oCol].strip(), file, lineNo, oCol, names[oCol]);
                if (rows.isEmpty()) firstNanos = nanos;
                rows.add(new TraceRow(lineNo, (nanos - firstNanos) / 1e9, prompt, output));
            }
            if (rows.isEmpty()) throw new BenchException(file + ": no requests after the header");
            return rows;
        } catch (IOException e) {
            throw new BenchException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    /** A bench serve requests.csv: arrivals as scheduled, the prompt as the server counted it, the tokens asked for. */
    private static List<TraceRow> readBenchRequests(BufferedReader in, String[] names, Path file) throws IOException {
        int tCol = indexOf(names, "scheduled_s"), oCol = indexOf(names, "max_tokens");
        int pCol = indexOf(names, "server_prompt_tokens") >= 0 ? indexOf(names, "server_prompt_tokens") : indexOf(names, "prompt_tokens");
        if (pCol < 0 || oCol < 0) {
            throw new BenchException(file + ": line 1: a bench serve requests.csv needs columns scheduled_s, prompt_tokens and max_tokens");
        }
        List<TraceRow> rows = new ArrayList<>();
        int lineNo = 1;
        for (String line; (line = in.readLine()) != null; ) {
            lineNo++;
            if (line.isBlank()) continue;
            String[] cells = line.split(",", -1);
            if (cells.length < names.length) {
                throw new BenchException(file + ": line " + lineNo + ": expected " + names.length + " columns, found " + cells.length);
            }
            double at;
            try {
                at = Double.parseDouble(cells[tCol].strip());
            } catch (NumberFormatException e) {
                throw bad(file, lineNo, tCol, names[tCol], cells[tCol], "a time in seconds");
            }
            rows.add(new TraceRow(lineNo, at, tokens(cells[pCol].strip(), file, lineNo, pCol, names[pCol]),
                    tokens(cells[oCol].strip(), file, lineNo, oCol, names[oCol])));
        }
        if (rows.isEmpty()) throw new BenchException(file + ": no requests after the header");
        rows.sort(java.util.Comparator.comparingDouble(TraceRow::arrivalS));
        return rows;
    }

    private static int indexOf(String[] names, String wanted) {
        for (int i = 0; i < names.length; i++) if (names[i].strip().equalsIgnoreCase(wanted)) return i;
        return -1;
    }

    private static int column(String[] names, String wanted, Path file) {
        int i = indexOf(names, wanted);
        if (i >= 0) return i;
        throw new BenchException(file + ": line 1: no column '" + wanted + "' in header '" + String.join(",", names)
                + "' (expected TIMESTAMP,ContextTokens,GeneratedTokens)");
    }

    private static long timestampNanos(String s, Path file, int line, int col, String name) {
        try {
            TemporalAccessor t = TIMESTAMP.parse(s);
            LocalDateTime local = LocalDateTime.from(t);
            ZoneOffset offset = t.isSupported(ChronoField.OFFSET_SECONDS) ? ZoneOffset.from(t) : ZoneOffset.UTC;
            var instant = local.toInstant(offset);
            return instant.getEpochSecond() * 1_000_000_000L + instant.getNano();
        } catch (DateTimeParseException e) {
            throw bad(file, line, col, name, s, "a timestamp like 2023-11-16 18:15:46.6805900");
        }
    }

    private static int tokens(String s, Path file, int line, int col, String name) {
        try {
            int v = Integer.parseInt(s);
            if (v >= 0) return v;
        } catch (NumberFormatException ignored) {
            // reported below with the position
        }
        throw bad(file, line, col, name, s, "a non-negative integer");
    }

    private static BenchException bad(Path file, int line, int col, String name, String value, String expected) {
        return new BenchException(file + ": line " + line + ", column " + (col + 1) + " (" + name.strip() + "): '" + value
                + "' is not " + expected);
    }
}
