package dev.tandem.engine.spec;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class NgramDrafterTest {
    private final NgramDrafter lookup = new NgramDrafter(1, 3);

    @Test
    void theLongestRecurringSuffixProposesWhatFollowedItsLatestOccurrence() {
        // Suffix [7, 8, 9] occurred at 1 (followed by 4) and at 6 (followed by 5): the latest wins.
        int[] t = {0, 7, 8, 9, 4, 2, 7, 8, 9, 5, 6, 7, 8, 9};
        assertArrayEquals(new int[] {5, 6}, lookup.find(t, t.length, 2));
    }

    @Test
    void aContinuationThatReachesTheEndFollowsItsOwnProposalAroundTheCycle() {
        int[] t = {3, 1, 2, 1, 2};
        assertArrayEquals(new int[] {1, 2, 1, 2, 1}, lookup.find(t, t.length, 5));
    }

    @Test
    void noRecurringSuffixProposesNothing() {
        assertArrayEquals(new int[0], lookup.find(new int[] {1, 2, 3, 4}, 4, 3));
        assertArrayEquals(new int[0], new NgramDrafter(2, 3).find(new int[] {1, 2, 3, 1}, 4, 3)); // only a 1-gram recurs
    }

    @Test
    void badSizesAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new NgramDrafter(0, 2));
        assertThrows(IllegalArgumentException.class, () -> new NgramDrafter(3, 2));
    }
}
