package dev.tandem.bench;

import dev.tandem.core.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Synthetic prompts of an exact length in tokens, counted the way an OpenAI-compatible server counts them: it
 * encodes the prompt string with the tokenizer's special tokens (BOS for Llama models), so
 * {@code tokenizer.encode(text, true).length == n}.
 *
 * <p>Text is random words from a fixed list, separated by spaces. Under word-splitting tokenizers a word with its
 * leading space costs the same wherever it stands, so the words' costs add up to nearly the target; the text is
 * then encoded and topped up (or trimmed) with single-token words until the count is exact. A tokenizer with no
 * single-token word (a byte-level one, as `init-random` writes: a word costs its letters plus the space) is topped
 * up with punctuation appended to the text instead. Each seed gives a different word sequence from the first word
 * on, so a server's prefix cache cannot make the prompts cheap.
 */
public final class PromptSynthesizer {
    private static final String[] WORDS = ("""
            the of and to in was he that it his her you as had with for she not at but be my on have him is said me which \
            by so this all from they no were if would or when what there been one could very an who them do we their \
            are upon man into now more will than some time then out little up other about any only our may old your \
            great two these like over first such should must good well before after down see day made long never \
            through much how where life way can men might those being again did own thought hand think eyes came know \
            house last just young without while here most under same heard night mind yet once found three away place \
            left still nothing back face both light world new work many went head less side water against voice high \
            love moment whole felt among small seemed door round half room father mother told another enough king \
            heart woman white turned ever morning things country name nor every word part always far passed \
            friend better end till letter rather stood children dear look full open sea almost fire gave \
            perhaps tree hope garden river horse city street mountain forest window evening summer winter spring \
            bread table chair paper story music field road bridge village church school castle island valley cloud \
            stone silver golden quiet gentle strange bright dark warm cold early late slowly softly suddenly \
            together across along behind beyond between beside above below toward""").split("\\s+");
    /** Appended without a space: the top-up pieces when no word costs one token. */
    private static final String[] MARKS = {",", ".", ";", ":", "!", "?"};

    private final Tokenizer tokenizer;
    private final int special;
    private final int[] cost;      // after a space, as every word but the first stands
    private final int[] firstCost; // without one, as the first word stands
    private final int[] singles;
    private final int[] shortestFirsts;
    private final int maxCost;

    public PromptSynthesizer(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
        this.special = tokenizer.encode("", true).length;
        int pieces = WORDS.length + MARKS.length;
        this.cost = new int[pieces];
        this.firstCost = new int[WORDS.length];
        int max = 1, minFirst = Integer.MAX_VALUE, and = tokenizer.encode("and", false).length;
        for (int i = 0; i < pieces; i++) {
            // Measured after a word, not as " word" alone: SentencePiece would add its dummy-prefix space to that.
            cost[i] = Math.max(1, tokenizer.encode("and" + piece(i), false).length - and);
            if (i < WORDS.length) {
                firstCost[i] = Math.max(1, tokenizer.encode(WORDS[i], false).length);
                max = Math.max(max, cost[i]);
                minFirst = Math.min(minFirst, firstCost[i]);
            }
        }
        int[] singleWords = indicesWhere(cost, 1, 0, WORDS.length);
        this.singles = singleWords.length > 0 ? singleWords : indicesWhere(cost, 1, WORDS.length, pieces);
        this.shortestFirsts = indicesWhere(firstCost, minFirst, 0, WORDS.length);
        if (singles.length == 0) {
            throw new BenchException("the tokenizer has no single-token English word or punctuation mark, so prompts of exact length cannot be built");
        }
        this.maxCost = max;
    }

    /** Piece i as it is appended: a word after a space, or a punctuation mark as it is. */
    private static String piece(int i) { return i < WORDS.length ? " " + WORDS[i] : MARKS[i - WORDS.length]; }

    private static int[] indicesWhere(int[] costs, int wanted, int from, int to) {
        List<Integer> out = new ArrayList<>();
        for (int i = from; i < to; i++) if (costs[i] == wanted) out.add(i);
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The shortest prompt with at least one word: the special tokens plus the shortest first word (usually 1). */
    public int minimumTokens() {
        return special + firstCost[shortestFirsts[0]];
    }

    /** A prompt that encodes (with special tokens) to exactly {@code n} tokens; a different one per seed. */
    public String synthesize(int n, long seed) {
        if (n < minimumTokens()) throw new IllegalArgumentException("prompt of " + n + " tokens is shorter than the minimum " + minimumTokens());
        SplittableRandom random = new SplittableRandom(seed);
        List<Integer> words = new ArrayList<>();
        int first = random.nextInt(WORDS.length);
        if (special + firstCost[first] > n) first = shortestFirsts[random.nextInt(shortestFirsts.length)];
        words.add(first);
        int estimate = special + firstCost[first];
        while (estimate < n) {
            int w = pick(random, n - estimate);
            words.add(w);
            estimate += cost[w];
        }
        for (int attempt = 0; attempt < 64; attempt++) {
            String text = join(words);
            int actual = tokenizer.encode(text, true).length;
            if (actual == n) return text;
            int missing = n - actual;
            // Too long: drop words from the end until at or under, then the shortfall is filled with singles.
            while (missing < 0 && words.size() > 1) missing += cost[words.removeLast()];
            if (missing < 0) { // the first word alone is too long: take a shortest one and count again
                words.set(0, shortestFirsts[random.nextInt(shortestFirsts.length)]);
                continue;
            }
            for (int i = 0; i < missing; i++) words.add(singles[random.nextInt(singles.length)]);
        }
        throw new IllegalStateException("could not build a prompt of exactly " + n + " tokens (seed " + seed + ")");
    }

    private int pick(SplittableRandom random, int budget) {
        if (budget >= maxCost) return random.nextInt(WORDS.length);
        for (int tries = 0; tries < 16; tries++) {
            int w = random.nextInt(WORDS.length);
            if (cost[w] <= budget) return w;
        }
        return singles[random.nextInt(singles.length)];
    }

    private static String join(List<Integer> words) {
        StringBuilder sb = new StringBuilder(words.size() * 6);
        for (int w : words) sb.append(sb.isEmpty() ? WORDS[w] : piece(w));
        return sb.toString();
    }
}
