package dev.tandem.core.tokenizer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Tokens matched literally in the text before any pre-tokenization or BPE, so that e.g. "<|eot_id|>" in a
 * rendered chat prompt becomes its one id. At each position the longest token wins.
 */
final class AddedTokens {
    record Token(String content, int id, boolean special, boolean lstrip, boolean rstrip, boolean singleWord) {}

    /** A piece of the input: either plain text (id -1) or one added token. */
    record Segment(String text, int id) {
        boolean isToken() { return id >= 0; }
    }

    private final Map<Character, List<Token>> byFirstChar = new HashMap<>();
    private final boolean empty;

    AddedTokens(List<Token> tokens) {
        for (Token t : tokens) {
            if (t.content().isEmpty()) continue;
            byFirstChar.computeIfAbsent(t.content().charAt(0), k -> new ArrayList<>()).add(t);
        }
        for (List<Token> l : byFirstChar.values()) {
            l.sort(Comparator.comparingInt((Token t) -> t.content().length()).reversed());
        }
        empty = byFirstChar.isEmpty();
    }

    List<Segment> split(String text) {
        List<Segment> out = new ArrayList<>();
        if (empty) {
            if (!text.isEmpty()) out.add(new Segment(text, -1));
            return out;
        }
        int textStart = 0;
        int i = 0;
        while (i < text.length()) {
            Token t = match(text, i);
            if (t == null) {
                i++;
                continue;
            }
            int before = i;
            if (t.lstrip()) while (before > textStart && Character.isWhitespace(text.charAt(before - 1))) before--;
            if (before > textStart) out.add(new Segment(text.substring(textStart, before), -1));
            out.add(new Segment(t.content(), t.id()));
            i += t.content().length();
            if (t.rstrip()) while (i < text.length() && Character.isWhitespace(text.charAt(i))) i++;
            textStart = i;
        }
        if (textStart < text.length()) out.add(new Segment(text.substring(textStart), -1));
        return out;
    }

    private Token match(String text, int at) {
        List<Token> candidates = byFirstChar.get(text.charAt(at));
        if (candidates == null) return null;
        for (Token t : candidates) {
            if (!text.startsWith(t.content(), at)) continue;
            int end = at + t.content().length();
            // single_word: only where the token is not glued to word characters on either side.
            if (t.singleWord() && ((at > 0 && isWordChar(text.codePointBefore(at)))
                    || (end < text.length() && isWordChar(text.codePointAt(end))))) continue;
            return t;
        }
        return null;
    }

    private static boolean isWordChar(int cp) { return Character.isLetterOrDigit(cp) || cp == '_'; }
}
