package dev.tandem.core.tokenizer;

import dev.tandem.core.format.ModelFormatException;

import java.nio.charset.StandardCharsets;

/**
 * A bounds-checked reader of the protobuf wire format over one message's bytes, enough for sentencepiece's
 * ModelProto without a protobuf dependency. Every read checks the message's end, so a corrupt file fails with
 * a {@link ModelFormatException} naming the file and offset instead of reading out of bounds.
 */
final class ProtoReader {
    static final int VARINT = 0, FIXED64 = 1, LENGTH_DELIMITED = 2, FIXED32 = 5;

    private final String name;
    private final byte[] data;
    private int pos;
    private final int end;
    private int tag;

    ProtoReader(String name, byte[] data, int start, int end) {
        this.name = name;
        this.data = data;
        this.pos = start;
        this.end = end;
    }

    /** Advances to the next field; false at the end of the message. */
    boolean next() {
        if (pos >= end) return false;
        long key = varint();
        if (key >>> 32 != 0 || (key >>> 3) == 0) throw bad("invalid field key " + key);
        tag = (int) key;
        return true;
    }

    int field() { return tag >>> 3; }

    int wireType() { return tag & 7; }

    long varint() {
        long v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos >= end) throw bad("varint runs past the end of its message");
            int b = data[pos++] & 0xff;
            v |= (long) (b & 0x7f) << shift;
            if (b < 0x80) return v;
        }
        throw bad("varint longer than 10 bytes");
    }

    /** An int32 / enum field: negative values are sign-extended to 64 bits on the wire. */
    int int32() {
        expect(VARINT);
        return (int) varint();
    }

    boolean bool() { return int32() != 0; }

    float float32() {
        expect(FIXED32);
        need(4);
        int bits = (data[pos] & 0xff) | (data[pos + 1] & 0xff) << 8 | (data[pos + 2] & 0xff) << 16
                | (data[pos + 3] & 0xff) << 24;
        pos += 4;
        return Float.intBitsToFloat(bits);
    }

    String string() {
        int len = lengthPrefix();
        String s = new String(data, pos, len, StandardCharsets.UTF_8);
        pos += len;
        return s;
    }

    /** The embedded message of a length-delimited field. */
    ProtoReader message() {
        int len = lengthPrefix();
        ProtoReader r = new ProtoReader(name, data, pos, pos + len);
        pos += len;
        return r;
    }

    void skip() {
        switch (wireType()) {
            case VARINT -> varint();
            case FIXED64 -> { need(8); pos += 8; }
            case LENGTH_DELIMITED -> {
                int len = lengthPrefix(); // not "pos += lengthPrefix()": that would add to pos as it was before the prefix
                pos += len;
            }
            case FIXED32 -> { need(4); pos += 4; }
            default -> throw bad("field " + field() + " has unsupported wire type " + wireType());
        }
    }

    int offset() { return pos; }

    ModelFormatException bad(String what) {
        return new ModelFormatException(name + ": " + what + " (at byte " + pos + ")");
    }

    private int lengthPrefix() {
        expect(LENGTH_DELIMITED);
        long len = varint();
        if (len < 0 || len > end - pos) {
            throw bad("field " + field() + " length " + len + " runs past the end of its message (" + (end - pos)
                    + " bytes left)");
        }
        return (int) len;
    }

    private void need(int n) {
        if (end - pos < n) throw bad("field " + field() + " needs " + n + " bytes, " + (end - pos) + " left");
    }

    private void expect(int wire) {
        if (wireType() != wire) {
            throw bad("field " + field() + " has wire type " + wireType() + ", expected " + wire);
        }
    }
}
