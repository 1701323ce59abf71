package dev.tandem.core.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Splits text into words before BPE; BPE never merges across words. */
interface PreTokenizer {
    /** GPT-2's split (ByteLevel's use_regex). */
    String GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

    /** Appends the words of {@code text} to {@code out}. */
    void split(String text, List<String> out);

    /** The split regexes applied, in order (what GGUF's tokenizer.ggml.pre names). */
    default List<String> patterns() { return List.of(); }

    /** Attaches the regexes a step applies to a split function. */
    static PreTokenizer of(List<String> patterns, PreTokenizer split) {
        List<String> copy = List.copyOf(patterns);
        return new PreTokenizer() {
            @Override public void split(String text, List<String> out) { split.split(text, out); }
            @Override public List<String> patterns() { return copy; }
        };
    }

    /** Each step splits every word of the previous step further. */
    static PreTokenizer sequence(List<PreTokenizer> steps) {
        if (steps.size() == 1) return steps.getFirst();
        List<PreTokenizer> copy = List.copyOf(steps);
        List<String> patterns = new ArrayList<>();
        for (PreTokenizer step : copy) patterns.addAll(step.patterns());
        return of(patterns, (text, out) -> {
            List<String> words = List.of(text);
            for (PreTokenizer step : copy) {
                List<String> next = new ArrayList<>();
                for (String w : words) step.split(w, next);
                words = next;
            }
            out.addAll(words);
        });
    }

    /**
     * Split with behaviour Isolated: every match is a word, and so is every stretch between matches.
     * UNICODE_CHARACTER_CLASS makes \s and friends Unicode-aware, as they are in Oniguruma / Rust regex.
     */
    static PreTokenizer isolate(String regex) {
        Pattern p = Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS);
        return of(List.of(regex), (text, out) -> {
            Matcher m = p.matcher(text);
            int last = 0;
            while (m.find()) {
                if (m.end() == m.start()) continue; // an empty match splits nothing
                if (m.start() > last) out.add(text.substring(last, m.start()));
                out.add(m.group());
                last = m.end();
            }
            if (last < text.length()) out.add(text.substring(last));
        });
    }

    /**
     * The ByteLevel step: optionally a leading space, optionally GPT-2's split, then each word's UTF-8 bytes as
     * byte-level characters (the alphabet the vocabulary is written in). Like tokenizers, the prefix space goes
     * on every piece this step receives (each stretch between added tokens, each word of an earlier Split).
     */
    static PreTokenizer byteLevel(boolean addPrefixSpace, boolean useRegex) {
        PreTokenizer gpt2 = useRegex ? isolate(GPT2_REGEX) : null;
        return of(useRegex ? List.of(GPT2_REGEX) : List.of(), (text, out) -> {
            String s = addPrefixSpace && !text.startsWith(" ") ? " " + text : text;
            if (gpt2 == null) {
                if (!s.isEmpty()) out.add(ByteLevel.encode(s));
                return;
            }
            List<String> words = new ArrayList<>();
            gpt2.split(s, words);
            for (String w : words) out.add(ByteLevel.encode(w));
        });
    }
}
