package dev.tandem.bench;

import dev.tandem.core.tokenizer.Tokenizer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class PromptSynthesizerTest {
    static Tokenizer tokenizer;
    static PromptSynthesizer prompts;

    @BeforeAll
    static void load() {
        tokenizer = TokenizerLoader.load(Shared.model());
        prompts = new PromptSynthesizer(tokenizer);
    }

    @Test
    void promptsEncodeToExactlyTheAskedTokensBosIncluded() {
        assertEquals(2, prompts.minimumTokens()); // BOS + one word
        for (int n : new int[] {2, 3, 4, 7, 16, 17, 100, 255, 511, 1000, 4142, 8000}) {
            for (long seed = 0; seed < 3; seed++) {
                String text = prompts.synthesize(n, seed);
                int[] ids = tokenizer.encode(text, true);
                assertEquals(n, ids.length, "n=" + n + " seed=" + seed);
                assertEquals(tokenizer.bos(), ids[0]);
                assertEquals(text, tokenizer.decode(ids)); // what the server decodes is what we sent
            }
        }
    }

    @Test
    void exactAlsoUnderSentencePieceTokenizersWithTheirDummyPrefixSpace() {
        for (Path p : List.of(Shared.dir().resolve("models/llama2-tokenizer-32000"), Shared.dir().resolve("models/stories260K/tok512.bin"))) {
            Tokenizer t = TokenizerLoader.load(p);
            PromptSynthesizer sp = new PromptSynthesizer(t);
            for (int n : new int[] {sp.minimumTokens(), 3, 16, 100, 1000, 4000}) {
                int[] ids = t.encode(sp.synthesize(n, n), true);
                assertEquals(n, ids.length, p + " n=" + n);
                assertEquals(t.bos(), ids[0]);
            }
        }
    }

    @Test
    void exactUnderTheByteLevelTokenizerOfRandomModels(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        // init-random's tokenizer: one token per byte, so no word costs one token and the top-up is punctuation.
        dev.tandem.core.tokenizer.SyntheticTokenizer.write(dir, 128256, 128000, 128001, 8192);
        Tokenizer bytes = TokenizerLoader.load(dir.resolve("tokenizer.json"));
        PromptSynthesizer sp = new PromptSynthesizer(bytes);
        for (int n : new int[] {sp.minimumTokens(), sp.minimumTokens() + 1, 17, 100, 1000, 8000}) {
            for (long seed = 0; seed < 3; seed++) {
                int[] ids = bytes.encode(sp.synthesize(n, seed), true);
                assertEquals(n, ids.length, "n=" + n + " seed=" + seed);
                assertEquals(bytes.bos(), ids[0]);
            }
        }
    }

    @Test
    void eachSeedGivesADifferentPromptFromTheFirstTokensOn() {
        Set<String> starts = new HashSet<>();
        for (long seed = 0; seed < 50; seed++) {
            int[] ids = tokenizer.encode(prompts.synthesize(300, seed), true);
            starts.add(java.util.Arrays.toString(java.util.Arrays.copyOf(ids, 16)));
        }
        assertEquals(50, starts.size()); // no two share a first 16-token KV block
        assertEquals(prompts.synthesize(300, 9), prompts.synthesize(300, 9));
        assertNotEquals(prompts.synthesize(300, 9), prompts.synthesize(300, 10));
    }

    @Test
    void tooShortIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> prompts.synthesize(1, 0));
    }

    @Test
    void tokenizerFileAloneIsEnough() {
        Tokenizer fromFile = TokenizerLoader.load(Shared.model().resolve("tokenizer.json"));
        assertEquals(tokenizer.vocabSize(), fromFile.vocabSize());
        BenchException e = assertThrows(BenchException.class, () -> TokenizerLoader.load(Shared.dir().resolve("no-such-model")));
        assertEquals(true, e.getMessage().contains("tokenizer path not found"));
    }
}
