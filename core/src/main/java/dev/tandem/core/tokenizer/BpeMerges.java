package dev.tandem.core.tokenizer;

import dev.tandem.core.format.ModelFormatException;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** The merge table of a byte-level BPE: each pair of ids, its rank (earlier merges first) and the merged id. */
final class BpeMerges implements MergeRule {
    private final Map<Long, Long> pairs = new HashMap<>();

    /** {@code merges[i]} is the i-th merge as its two pieces; {@code source} names the file for errors. */
    BpeMerges(String source, Map<String, Integer> vocab, List<String[]> merges) {
        for (int rank = 0; rank < merges.size(); rank++) {
            String[] m = merges.get(rank);
            Integer a = vocab.get(m[0]), b = vocab.get(m[1]), ab = vocab.get(m[0] + m[1]);
            String missing = a == null ? m[0] : b == null ? m[1] : ab == null ? m[0] + m[1] : null;
            if (missing != null) {
                throw new ModelFormatException(source + ": merges[" + rank + "] \"" + m[0] + " " + m[1] + "\": '"
                        + missing + "' is not in the vocabulary");
            }
            pairs.putIfAbsent(key(a, b), MergeRule.pack(rank, ab));
        }
    }

    /** Splits a merge given as "a b" (tokenizer.json before 2024, GGUF). */
    static String[] parse(String source, int rank, String merge) {
        int space = merge.indexOf(' ');
        if (space <= 0 || space == merge.length() - 1 || merge.indexOf(' ', space + 1) >= 0) {
            throw new ModelFormatException(source + ": merges[" + rank + "] \"" + merge
                    + "\" is not two pieces separated by one space");
        }
        return new String[] {merge.substring(0, space), merge.substring(space + 1)};
    }

    int size() { return pairs.size(); }

    /** The merges in rank order as "a b" strings (GGUF's tokenizer.ggml.merges). */
    String[] toStrings(String[] pieces) {
        String[] out = new String[pairs.size()];
        for (Map.Entry<Long, Long> e : pairs.entrySet()) {
            int rank = (int) (e.getValue() >>> 32);
            out[rank] = pieces[(int) (e.getKey() >>> 32)] + " " + pieces[(int) (long) e.getKey()];
        }
        return java.util.Arrays.stream(out).filter(java.util.Objects::nonNull).toArray(String[]::new);
    }

    @Override
    public long merge(int left, int right) {
        Long m = pairs.get(key(left, right));
        return m == null ? NO_MERGE : m;
    }

    private static long key(int a, int b) { return ((long) a << 32) | (b & 0xffffffffL); }
}
