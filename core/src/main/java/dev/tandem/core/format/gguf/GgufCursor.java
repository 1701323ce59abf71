package dev.tandem.core.format.gguf;

import dev.tandem.core.format.ModelFormatException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Reads GGUF's little-endian primitives from a mapped file, checking every read and every length against the
 * bytes left first, so a damaged file gives a {@link ModelFormatException} and never a huge allocation or a read
 * outside the mapping. {@code field} arguments name what is being read, for the message.
 */
final class GgufCursor {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final MemorySegment data;
    private final String file;
    private long pos;

    GgufCursor(MemorySegment data, String file) {
        this.data = data;
        this.file = file;
    }

    long position() { return pos; }

    long remaining() { return data.byteSize() - pos; }

    /** Fails unless {@code n} more bytes are there. */
    void require(long n, String field) {
        if (n > remaining()) {
            throw error("file ends inside " + field + " (at byte " + pos + " it needs " + n + " bytes, the file has "
                    + data.byteSize() + ")");
        }
    }

    /**
     * Checks a count read from the file: {@code count} items of at least {@code minBytes} each must fit in the
     * bytes left (a uint64 above Long.MAX_VALUE reads as negative and fails too).
     */
    long checkCount(long count, int minBytes, String field) {
        if (count < 0 || count > remaining() / minBytes) {
            throw error(field + " is " + Long.toUnsignedString(count) + ", but only " + remaining()
                    + " bytes are left in the file (at least " + minBytes + " per item)");
        }
        return count;
    }

    int u8(String field) {
        require(1, field);
        return data.get(ValueLayout.JAVA_BYTE, pos++) & 0xff;
    }

    int u16(String field) {
        require(2, field);
        int v = data.get(U16, pos) & 0xffff;
        pos += 2;
        return v;
    }

    /** The raw 32 bits; callers widen with {@link Integer#toUnsignedLong} where the field is unsigned. */
    int u32(String field) {
        require(4, field);
        int v = data.get(U32, pos);
        pos += 4;
        return v;
    }

    /** The raw 64 bits; an unsigned value above Long.MAX_VALUE comes back negative. */
    long u64(String field) {
        require(8, field);
        long v = data.get(U64, pos);
        pos += 8;
        return v;
    }

    float f32(String field) { return Float.intBitsToFloat(u32(field)); }

    double f64(String field) { return Double.longBitsToDouble(u64(field)); }

    boolean bool(String field) {
        int b = u8(field);
        if (b > 1) throw error(field + " is a bool stored as " + b + ", expected 0 or 1");
        return b == 1;
    }

    /** A GGUF string: uint64 byte length, then that many UTF-8 bytes, no terminator. */
    String string(String field) {
        long len = u64(field + " length");
        if (len < 0 || len > remaining()) {
            throw error(field + " has length " + Long.toUnsignedString(len) + ", past the end of the file ("
                    + remaining() + " bytes left)");
        }
        if (len > Integer.MAX_VALUE - 16) throw error(field + " has length " + len + ", too long for a string");
        byte[] bytes = data.asSlice(pos, len).toArray(ValueLayout.JAVA_BYTE);
        pos += len;
        return new String(bytes, StandardCharsets.UTF_8);
    }

    ModelFormatException error(String message) { return new ModelFormatException(file + ": " + message); }
}
