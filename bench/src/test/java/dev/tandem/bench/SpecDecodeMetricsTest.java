package dev.tandem.bench;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SpecDecodeMetricsTest {
    static String text(int drafts, int tokens, int accepted, int pos0, int pos1) {
        return "# TYPE vllm:spec_decode_num_drafts_total counter\n"
                + "vllm:spec_decode_num_drafts_total{model_name=\"m\"} " + drafts + ".0\n"
                + "vllm:spec_decode_num_draft_tokens_total{model_name=\"m\"} " + tokens + ".0\n"
                + "vllm:spec_decode_num_accepted_tokens_total{model_name=\"m\"} " + accepted + ".0\n"
                + "vllm:spec_decode_num_accepted_tokens_per_pos_total{model_name=\"m\",position=\"0\"} " + pos0 + ".0\n"
                + "vllm:spec_decode_num_accepted_tokens_per_pos_total{model_name=\"m\",position=\"1\"} " + pos1 + ".0\n"
                + "vllm:spec_decode_draft_acceptance_rate{model_name=\"m\"} 0.5\n";
    }

    @Test
    void theSectionReportsWhatHappenedBetweenTheScrapes() {
        SpecDecodeMetrics before = SpecDecodeMetrics.parse(text(10, 20, 8, 6, 2));
        SpecDecodeMetrics after = SpecDecodeMetrics.parse(text(30, 60, 28, 20, 8));
        assertEquals(10, before.drafts());
        String md = SpecDecodeMetrics.section(before, after);
        // 20 drafts, 40 tokens, 20 accepted: rate 0.5, mean length 2.0; by position 14/20 and 6/20.
        assertTrue(md.contains("| 20 | 40 | 20 | 0.500 | 2.00 | 0.70 0.30 |"), md);
    }

    @Test
    void aServerWithoutSpeculationAddsNothing() {
        assertNull(SpecDecodeMetrics.parse("vllm:num_requests_running{model_name=\"m\"} 0.0\n"));
        assertNull(SpecDecodeMetrics.parse(null));
        assertEquals("", SpecDecodeMetrics.section(null, null));
    }
}
