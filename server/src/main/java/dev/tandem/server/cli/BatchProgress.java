package dev.tandem.server.cli;

/** A one-line progress bar on stderr (rewritten in place with a carriage return). */
final class BatchProgress {
    private final String label;
    private final int total;
    private final long start = System.nanoTime();

    BatchProgress(String label, int total) {
        this.label = label;
        this.total = total;
        update(0, total);
    }

    void update(int done, int of) {
        int width = 30, filled = of == 0 ? width : (int) ((long) done * width / of);
        double s = (System.nanoTime() - start) / 1e9;
        System.err.printf("\r%s [%s%s] %d/%d (%.1f s)", label, "#".repeat(filled), " ".repeat(width - filled), done, of, s);
        System.err.flush();
    }

    void done() { System.err.println(); }
}
