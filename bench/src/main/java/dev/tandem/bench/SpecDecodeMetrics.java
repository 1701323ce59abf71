package dev.tandem.bench;

import java.util.Locale;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Speculative decoding's counters read from the server's /metrics (vLLM's spec_decode names, which Tandem and vLLM
 * both expose), so that a report says what speculation did during the run. Absent when the server does not speculate.
 *
 * @param acceptedPerPosition accepted tokens by draft position
 */
record SpecDecodeMetrics(double drafts, double draftTokens, double acceptedTokens, TreeMap<Integer, Double> acceptedPerPosition) {
    private static final Pattern LINE = Pattern.compile("(?m)^(vllm:spec_decode_[a-z_]+?)(?:_total)?(\\{[^}]*})? ([^ \\n]+)");
    private static final Pattern POSITION = Pattern.compile("position=\"(\\d+)\"");

    /** The counters in a /metrics text, or null when it has none (or there is no text). */
    static SpecDecodeMetrics parse(String text) {
        if (text == null) return null;
        double drafts = Double.NaN, draftTokens = 0, accepted = 0;
        TreeMap<Integer, Double> perPos = new TreeMap<>();
        Matcher m = LINE.matcher(text);
        while (m.find()) {
            double v;
            try {
                v = Double.parseDouble(m.group(3));
            } catch (NumberFormatException e) {
                continue;
            }
            switch (m.group(1)) {
                case "vllm:spec_decode_num_drafts" -> drafts = v;
                case "vllm:spec_decode_num_draft_tokens" -> draftTokens = v;
                case "vllm:spec_decode_num_accepted_tokens" -> accepted = v;
                case "vllm:spec_decode_num_accepted_tokens_per_pos" -> {
                    Matcher p = POSITION.matcher(m.group(2) == null ? "" : m.group(2));
                    if (p.find()) perPos.merge(Integer.parseInt(p.group(1)), v, Double::sum);
                }
                default -> { }
            }
        }
        return Double.isNaN(drafts) ? null : new SpecDecodeMetrics(drafts, draftTokens, accepted, perPos);
    }

    /** What happened between two scrapes, as a report section; empty when either is missing. */
    static String section(SpecDecodeMetrics before, SpecDecodeMetrics after) {
        if (before == null || after == null) return "";
        double drafts = after.drafts - before.drafts, tokens = after.draftTokens - before.draftTokens,
                accepted = after.acceptedTokens - before.acceptedTokens;
        StringBuilder byPos = new StringBuilder();
        for (var e : after.acceptedPerPosition.entrySet()) {
            double d = e.getValue() - before.acceptedPerPosition.getOrDefault(e.getKey(), 0.0);
            byPos.append(byPos.isEmpty() ? "" : " ").append(String.format(Locale.ROOT, "%.2f", drafts == 0 ? 0 : d / drafts));
        }
        return String.format(Locale.ROOT, "%n## Speculative decoding (server's /metrics during the run)%n%n"
                        + "| drafts | draft tokens | accepted | acceptance rate | mean acceptance length | accepted per draft, by position |%n"
                        + "|---:|---:|---:|---:|---:|---|%n| %.0f | %.0f | %.0f | %.3f | %.2f | %s |%n",
                drafts, tokens, accepted, tokens == 0 ? 0 : accepted / tokens, drafts == 0 ? 0 : 1 + accepted / drafts, byPos);
    }
}
