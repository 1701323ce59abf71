package dev.tandem.server.generation;

import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.tokenizer.Tokenizer;
import dev.tandem.engine.TokenEvent;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Text, stop strings and logprobs released together, on the real byte-level BPE tokenizer. */
class OutputAssemblerTest {
    static Model model;
    static Tokenizer tok;

    @BeforeAll
    static void load() {
        model = ModelLoader.load(Path.of(System.getProperty("tandem.shared", "../../shared"), "models", "gutenberg-stories-llama-25m"), null);
        tok = model.tokenizer();
    }

    @AfterAll
    static void close() { model.close(); }

    static TokenEvent event(int id) { return new TokenEvent(id, -0.5f, new int[]{id}, new float[]{-0.5f}); }

    static List<OutputAssembler.Delta> run(OutputAssembler a, int[] ids) {
        List<OutputAssembler.Delta> out = new ArrayList<>();
        for (int id : ids) out.add(a.accept(event(id)));
        out.add(a.finish());
        return out;
    }

    @Test
    void everyTokensLogprobGoesOutWithItsTextAndOffsetsAddUp() {
        int[] prompt = tok.encode("Once upon a time", true);
        int[] ids = tok.encode(" there lived in a little village", false);
        OutputAssembler a = new OutputAssembler(tok, prompt[prompt.length - 1], List.of(), true);
        StringBuilder text = new StringBuilder();
        List<TokenLogprob> lps = new ArrayList<>();
        for (OutputAssembler.Delta d : run(a, ids)) {
            text.append(d.text());
            lps.addAll(d.logprobs());
        }
        assertEquals(" there lived in a little village", text.toString());
        assertEquals(ids.length, lps.size());
        StringBuilder joined = new StringBuilder();
        for (TokenLogprob t : lps) {
            assertEquals(joined.length(), t.textOffset());
            joined.append(t.token());
            assertEquals(1, t.top().size());
        }
        assertEquals(text.toString(), joined.toString());
    }

    @Test
    void afterAStopOnlyTokensStartingBeforeItKeepTheirLogprobs() {
        int[] ids = tok.encode(" there lived in a little village in", false);
        OutputAssembler a = new OutputAssembler(tok, 579, List.of("tle vil"), true);
        StringBuilder text = new StringBuilder();
        List<TokenLogprob> lps = new ArrayList<>();
        for (OutputAssembler.Delta d : run(a, ids)) {
            text.append(d.text());
            lps.addAll(d.logprobs());
        }
        assertEquals(" there lived in a lit", text.toString());
        assertTrue(a.stopped());
        assertEquals(List.of(" there", " lived", " in", " a", " little"), lps.stream().map(TokenLogprob::token).toList());
        assertEquals(6, a.tokens(), "the token that completed the stop counts");
    }

    @Test
    void aCharacterSplitAcrossTokensIsNeverEmittedHalfWay() {
        int[] ids = tok.encode(" caf\u00e9 \u2014 \uD83D\uDE00", false);
        OutputAssembler a = new OutputAssembler(tok, 0, List.of(), false);
        StringBuilder text = new StringBuilder();
        for (OutputAssembler.Delta d : run(a, ids)) {
            assertTrue(d.text().indexOf('\uFFFD') < 0, "half a character in " + d.text());
            text.append(d.text());
        }
        assertEquals(" caf\u00e9 \u2014 \uD83D\uDE00", text.toString());
    }
}
