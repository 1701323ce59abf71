package dev.tandem.core.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Turns a stream of token ids into text without ever emitting half a UTF-8 character: bytes of an
 * incomplete sequence are held back until the token that completes it arrives.
 */
public final class StreamDecoder {
    private final Tokenizer tokenizer;
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();
    private int previous = -1;

    public StreamDecoder(Tokenizer tokenizer) { this.tokenizer = tokenizer; }

    /** Starts after the given token (e.g. the last prompt token), so context-dependent rules apply. */
    public StreamDecoder after(int token) {
        previous = token;
        return this;
    }

    /** The text that is complete after this token; possibly empty. */
    public String next(int id) {
        byte[] b = tokenizer.tokenBytes(previous, id);
        previous = id;
        pending.writeBytes(b);
        byte[] all = pending.toByteArray();
        int complete = completePrefix(all);
        pending.reset();
        pending.write(all, complete, all.length - complete);
        return new String(all, 0, complete, StandardCharsets.UTF_8);
    }

    /** Whatever is still held back, with invalid bytes replaced. */
    public String flush() {
        String s = pending.toString(StandardCharsets.UTF_8);
        pending.reset();
        return s;
    }

    /** Length of the longest prefix that does not end inside a (possibly valid) multi-byte sequence. */
    static int completePrefix(byte[] b) {
        int n = b.length;
        // Look back at most 3 bytes for the lead byte of a trailing incomplete sequence.
        for (int back = 1; back <= Math.min(3, n); back++) {
            int c = b[n - back] & 0xff;
            if ((c & 0xc0) == 0x80) continue; // continuation byte: keep looking for the lead
            int need = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;
            return need > back ? n - back : n;
        }
        return n;
    }
}
