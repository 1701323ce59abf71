package dev.tandem.bench;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Progress of the load run on stderr: on a terminal a bar redrawn in place with {@code \r} a few times a second;
 * otherwise (output redirected, a CI log) one plain line every few seconds, since carriage returns would pile up.
 */
public final class ProgressBar implements AutoCloseable {
    private static final int WIDTH = 30;

    private final PrintStream err;
    private final LiveCounters counters;
    private final int total;
    private final boolean inPlace;
    private final Thread thread;
    private volatile boolean running = true;

    /** @param enabled false for --no-progress: nothing is printed */
    public ProgressBar(PrintStream err, LiveCounters counters, int total, boolean enabled, boolean terminal) {
        this.err = err;
        this.counters = counters;
        this.total = total;
        this.inPlace = terminal;
        this.thread = enabled ? Thread.ofPlatform().daemon().name("bench-progress").unstarted(this::loop) : null;
        if (thread != null) thread.start();
    }

    /**
     * Whether stderr is an interactive terminal. Java has no isatty for stderr alone, and {@code Console.isTerminal}
     * looks at stdin and stdout, so {@code bench serve > report.md} would lose the bar; on Linux the target of
     * /proc/self/fd/2 answers for stderr itself. Elsewhere the console decides.
     */
    public static boolean stderrIsTerminal() {
        try {
            Path fd2 = Path.of("/proc/self/fd/2");
            if (Files.isSymbolicLink(fd2)) {
                String target = Files.readSymbolicLink(fd2).toString();
                return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty");
            }
        } catch (IOException | SecurityException | UnsupportedOperationException e) {
            // fall through to the console
        }
        var console = System.console();
        return console != null && console.isTerminal();
    }

    private void loop() {
        long period = inPlace ? 250 : 5000;
        while (running) {
            try {
                Thread.sleep(period);
            } catch (InterruptedException e) {
                break;
            }
            if (running) draw(false);
        }
    }

    String line() {
        int done = counters.done.get(), issued = counters.issued.get();
        double elapsed = counters.elapsedS();
        double tps = elapsed > 0 ? counters.chunks.sum() / elapsed : 0;
        int filled = total == 0 ? WIDTH : (int) Math.min(WIDTH, (long) done * WIDTH / total);
        String bar = "#".repeat(filled) + "-".repeat(WIDTH - filled);
        return String.format(Locale.ROOT, "[%s] %d/%d done, %d issued, %d in flight, %d failed, %.1f s, %.0f tok/s",
                bar, done, total, issued, counters.inFlight(), counters.failed.get(), elapsed, tps);
    }

    private synchronized void draw(boolean last) {
        String l = line();
        if (inPlace) err.print("\r" + l + "\033[K" + (last ? "\n" : ""));
        else err.println(l);
        err.flush();
    }

    @Override
    public void close() {
        if (thread == null) return;
        running = false;
        thread.interrupt();
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        draw(true);
    }
}
