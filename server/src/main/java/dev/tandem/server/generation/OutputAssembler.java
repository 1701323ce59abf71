package dev.tandem.server.generation;

import dev.tandem.core.tokenizer.StreamDecoder;
import dev.tandem.core.tokenizer.Tokenizer;
import dev.tandem.engine.TokenEvent;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Turns a request's tokens into the text the client sees: UTF-8-safe decoding, stop strings, and each token's
 * logprobs released together with the text they produced. A token's logprobs go out once all of its text has;
 * after a stop, the tokens whose text starts before the stop string go out and the rest are dropped.
 */
public final class OutputAssembler {
    /** Text and logprobs to send now; either may be empty. */
    public record Delta(String text, List<TokenLogprob> logprobs) {
        public static final Delta EMPTY = new Delta("", List.of());

        public boolean isEmpty() { return text.isEmpty() && logprobs.isEmpty(); }
    }

    private final Tokenizer tokenizer;
    private final StreamDecoder decoder;
    private final StopMatcher stops;
    private final boolean logprobs;
    private final List<TokenLogprob> pending = new ArrayList<>();
    private int previous;
    private int decoded;   // chars the decoder has produced
    private int released;  // chars handed to the client
    private int tokens;

    public OutputAssembler(Tokenizer tokenizer, int lastPromptToken, List<String> stopStrings, boolean logprobs) {
        this.tokenizer = tokenizer;
        this.decoder = new StreamDecoder(tokenizer).after(lastPromptToken);
        this.stops = new StopMatcher(stopStrings);
        this.logprobs = logprobs;
        this.previous = lastPromptToken;
    }

    /** Whether a stop string ended the output; later tokens are ignored. */
    public boolean stopped() { return stops.stopped(); }

    /** Tokens that contributed to the output (up to and including the one that completed a stop string). */
    public int tokens() { return tokens; }

    public Delta accept(TokenEvent event) {
        if (stops.stopped()) return Delta.EMPTY;
        tokens++;
        String piece = decoder.next(event.token());
        if (logprobs) pending.add(logprob(event, decoded));
        previous = event.token();
        decoded += piece.length();
        return release(stops.push(piece));
    }

    /** What was held back, at the end of the output. */
    public Delta finish() {
        if (stops.stopped()) return Delta.EMPTY;
        String text = stops.push(decoder.flush());
        if (!stops.stopped()) text += stops.flush();
        released += text.length();
        return new Delta(text, takeLast(stops.stopped() ? released : Integer.MAX_VALUE));
    }

    private Delta release(String text) {
        released += text.length();
        if (!logprobs) return text.isEmpty() ? Delta.EMPTY : new Delta(text, List.of());
        return new Delta(text, stops.stopped() ? takeLast(released) : takeReleased());
    }

    /** Pending logprobs whose token's text is all out. */
    private List<TokenLogprob> takeReleased() {
        int n = 0;
        while (n < pending.size()) {
            int end = n + 1 < pending.size() ? pending.get(n + 1).textOffset() : decoded;
            if (end > released) break;
            n++;
        }
        List<TokenLogprob> out = List.copyOf(pending.subList(0, n));
        pending.subList(0, n).clear();
        return out;
    }

    /** At the end: the pending logprobs of tokens whose text starts before {@code cut} (a stop string); the rest are dropped. */
    private List<TokenLogprob> takeLast(int cut) {
        List<TokenLogprob> out = new ArrayList<>();
        for (TokenLogprob t : pending) if (t.textOffset() < cut || cut == Integer.MAX_VALUE) out.add(t);
        pending.clear();
        return out;
    }

    private TokenLogprob logprob(TokenEvent e, int offset) {
        byte[] bytes = tokenizer.tokenBytes(previous, e.token());
        List<TokenLogprob.Alternative> top = new ArrayList<>(e.topIds().length);
        for (int k = 0; k < e.topIds().length; k++) {
            byte[] b = tokenizer.tokenBytes(previous, e.topIds()[k]);
            top.add(new TokenLogprob.Alternative(text(b, e.topIds()[k]), b, e.topLogprobs()[k]));
        }
        return new TokenLogprob(text(bytes, e.token()), bytes, e.logprob(), offset, top);
    }

    /** A piece's text; special tokens (which decode to nothing) show as their vocabulary piece. */
    private String text(byte[] bytes, int id) {
        if (bytes.length == 0 && tokenizer.isSpecial(id)) return tokenizer.piece(id);
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
