package dev.tandem.core.format;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A read-only memory mapping of a whole model file in a caller-owned arena, with bounds-checked reads whose
 * errors name the file. Tensors are zero-copy slices of {@link #segment()}; nothing goes to the Java heap.
 */
public final class MappedFile {
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final MemorySegment segment;

    private MappedFile(Path path, MemorySegment segment) {
        this.path = path;
        this.segment = segment;
    }

    public static MappedFile map(Path path, Arena arena) {
        if (!Files.exists(path)) throw new ModelFormatException(path + ": file not found");
        if (!Files.isRegularFile(path)) throw new ModelFormatException(path + ": not a regular file");
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            MemorySegment seg = size == 0 ? MemorySegment.NULL.reinterpret(0) : ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            return new MappedFile(path, seg);
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(path + ": file not found");
        } catch (IOException e) {
            throw new ModelFormatException(path + ": cannot read: " + e.getMessage(), e);
        }
    }

    public Path path() { return path; }

    public String name() { return path.getFileName().toString(); }

    public MemorySegment segment() { return segment; }

    public long size() { return segment.byteSize(); }

    /** Checks that [offset, offset + length) lies inside the file; {@code what} names the thing being read. */
    public void require(long offset, long length, String what) {
        if (offset < 0 || length < 0 || offset > size() || length > size() - offset) {
            throw new ModelFormatException(name() + ": " + what + " [offset " + offset + ", " + length
                    + " bytes] runs past the end of the file (" + size() + " bytes)");
        }
    }

    public int i32(long offset, String what) {
        require(offset, 4, what);
        return segment.get(I32, offset);
    }

    public long i64(long offset, String what) {
        require(offset, 8, what);
        return segment.get(I64, offset);
    }

    public float f32(long offset, String what) {
        require(offset, 4, what);
        return segment.get(F32, offset);
    }

    public MemorySegment slice(long offset, long length, String what) {
        require(offset, length, what);
        return segment.asSlice(offset, length);
    }

    public ModelFormatException error(String message) { return new ModelFormatException(name() + ": " + message); }
}
