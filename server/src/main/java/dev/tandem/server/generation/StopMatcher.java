package dev.tandem.server.generation;

import java.util.List;

/**
 * Finds stop strings in streamed text. Text is released only once it can no longer be part of a stop string: a
 * suffix that is the start of one is held back until the next piece settles it, so stops that span tokens are
 * found and never leak into the output.
 */
public final class StopMatcher {
    private final List<String> stops;
    private final StringBuilder held = new StringBuilder();
    private boolean stopped;

    public StopMatcher(List<String> stops) { this.stops = List.copyOf(stops); }

    public boolean stopped() { return stopped; }

    /** Appends a piece of text and returns what may be released now; after a stop, the text before it. */
    public String push(String piece) {
        if (stopped) return "";
        if (stops.isEmpty()) return piece;
        held.append(piece);
        int first = -1;
        for (String s : stops) {
            int at = held.indexOf(s);
            if (at >= 0 && (first < 0 || at < first)) first = at;
        }
        if (first >= 0) {
            stopped = true;
            String out = held.substring(0, first);
            held.setLength(0);
            return out;
        }
        int keep = 0;
        for (String s : stops) keep = Math.max(keep, partialSuffix(held, s));
        String out = held.substring(0, held.length() - keep);
        held.delete(0, held.length() - keep);
        return out;
    }

    /** The held-back text, when the output ends without a stop. */
    public String flush() {
        String out = stopped ? "" : held.toString();
        held.setLength(0);
        return out;
    }

    /** Length of the longest proper prefix of {@code stop} that {@code text} ends with. */
    static int partialSuffix(CharSequence text, String stop) {
        for (int k = Math.min(stop.length() - 1, text.length()); k > 0; k--) {
            boolean match = true;
            for (int i = 0; i < k && match; i++) match = text.charAt(text.length() - k + i) == stop.charAt(i);
            if (match) return k;
        }
        return 0;
    }
}
