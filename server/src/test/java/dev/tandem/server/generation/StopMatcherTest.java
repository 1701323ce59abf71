package dev.tandem.server.generation;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StopMatcherTest {
    static String feed(StopMatcher m, String... pieces) {
        StringBuilder out = new StringBuilder();
        for (String p : pieces) out.append(m.push(p));
        return out.toString();
    }

    @Test
    void textThatCouldStartAStopIsHeldBackUntilSettled() {
        StopMatcher m = new StopMatcher(List.of("</end>"));
        assertEquals("Hello ", m.push("Hello </"));
        assertEquals("</b> ", m.push("b> "));
        assertEquals("x", m.push("x<"));
        assertEquals("", m.push("/en"));
        assertFalse(m.stopped());
        assertEquals("", m.push("d> and more"));
        assertTrue(m.stopped());
        assertEquals("", m.push("ignored"));
        assertEquals("", m.flush());
    }

    @Test
    void aStopSpanningSeveralPiecesCutsTheOutputBeforeIt() {
        StopMatcher m = new StopMatcher(List.of("little village"));
        assertEquals(" there lived in a ", feed(m, " there", " lived", " in", " a", " lit", "tle", " vil", "lage", " again"));
        assertTrue(m.stopped());
    }

    @Test
    void theEarliestOfSeveralStopsWins() {
        StopMatcher m = new StopMatcher(List.of("dog", "cat"));
        assertEquals("the ", feed(m, "the cat and the dog"));
    }

    @Test
    void withoutAStopTheHeldTextIsFlushedAtTheEnd() {
        StopMatcher m = new StopMatcher(List.of("ab", "xyz"));
        assertEquals("123", feed(m, "123x", "y"));
        assertEquals("xy", m.flush());
    }

    @Test
    void noStopsPassEverythingThrough() {
        assertEquals("abc", feed(new StopMatcher(List.of()), "a", "b", "c"));
    }
}
