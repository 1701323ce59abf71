package dev.tandem.core.tokenizer;

import dev.tandem.core.TestModels;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The heap-based merge gives exactly what llama2.c's rescan-everything loop gives. */
class SentencePieceMergeOrderTest {
    @Test
    void heapMergeEqualsLlama2cRescanLoop() throws Exception {
        for (var tokenizer : List.of(
                SentencePieceTokenizer.fromLlama2cBin(TestModels.model("stories260K").resolve("tok512.bin")),
                SentencePieceTokenizer.fromLlama2cBin(TestModels.model("llama2-tokenizer-32000").resolve("tokenizer.bin")))) {
            String val = Files.readString(TestModels.model("gutenberg-stories").resolve("val.txt"));
            List<String> texts = new ArrayList<>(List.of(val.substring(0, 3000).split("\n")));
            texts.add("aaaaaaaaaa bbbb    ccc\t\tééé 🙂🙂");
            for (String text : texts) {
                assertArrayEquals(rescan(tokenizer, text), tokenizer.encode(text, true), text);
            }
        }
    }

    /** llama2.c run.c's encode, written out plainly: O(n^2), best score wins, leftmost on ties. */
    private static int[] rescan(SentencePieceTokenizer t, String text) {
        Map<String, Integer> vocab = new HashMap<>();
        for (int i = 0; i < t.vocabSize(); i++) {
            if (t.type(i) == TokenType.NORMAL) vocab.putIfAbsent(t.piece(i).replace('▁', ' '), i);
        }
        List<Integer> tokens = new ArrayList<>();
        tokens.add(t.bos());
        List<Integer> work = new ArrayList<>();
        String s = " " + text;
        for (int i = 0; i < s.length(); ) {
            int end = s.offsetByCodePoints(i, 1);
            Integer id = vocab.get(s.substring(i, end));
            if (id != null) work.add(id);
            else for (byte b : s.substring(i, end).getBytes(StandardCharsets.UTF_8)) work.add((b & 0xff) + 3);
            i = end;
        }
        while (true) {
            float best = Float.NEGATIVE_INFINITY;
            int bestId = -1, bestIdx = -1;
            for (int i = 0; i + 1 < work.size(); i++) {
                Integer id = vocab.get(t.piece(work.get(i)).replace('▁', ' ') + t.piece(work.get(i + 1)).replace('▁', ' '));
                if (id != null && t.score(id) > best) {
                    best = t.score(id);
                    bestId = id;
                    bestIdx = i;
                }
            }
            if (bestIdx < 0) break;
            work.set(bestIdx, bestId);
            work.remove(bestIdx + 1);
        }
        tokens.addAll(work);
        return tokens.stream().mapToInt(Integer::intValue).toArray();
    }
}
