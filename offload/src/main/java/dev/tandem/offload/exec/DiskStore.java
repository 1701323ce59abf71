package dev.tandem.offload.exec;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The disk tier: one scratch file that the run appends tensors to once and reads back many times. Every record
 * starts on a 4 KiB boundary and is read whole with direct I/O (O_DIRECT, bypassing the page cache) where the file
 * system allows it, so reads are large, aligned and not double-buffered; elsewhere (tmpfs) with ordinary reads.
 * The file is deleted on close.
 */
public final class DiskStore implements AutoCloseable {
    public static final int ALIGN = 4096;
    private final Path file;
    private final FileChannel writer;
    private final FileChannel reader;
    private final boolean direct;
    private final long cap;
    private final AtomicLong end = new AtomicLong();
    private final AtomicLong bytesRead = new AtomicLong();

    public DiskStore(Path dir, long cap) {
        this.cap = cap;
        try {
            Files.createDirectories(dir);
            file = Files.createTempFile(dir, "tandem-offload-", ".bin");
            writer = FileChannel.open(file, StandardOpenOption.WRITE);
            FileChannel r;
            boolean d;
            try {
                r = FileChannel.open(file, StandardOpenOption.READ, com.sun.nio.file.ExtendedOpenOption.DIRECT);
                d = true;
            } catch (IOException | UnsupportedOperationException e) {
                r = FileChannel.open(file, StandardOpenOption.READ);
                d = false;
            }
            reader = r;
            direct = d;
        } catch (IOException e) {
            throw new OffloadException("cannot create the disk tier in " + dir + ": " + e.getMessage(), e);
        }
    }

    public boolean direct() { return direct; }

    public Path file() { return file; }

    public long size() { return end.get(); }

    public long bytesRead() { return bytesRead.get(); }

    /** Bytes a staging buffer needs to read a record of {@code bytes} (whole aligned blocks). */
    public static long staged(long bytes) { return (bytes + ALIGN - 1) / ALIGN * ALIGN; }

    /** Appends {@code src} and returns its offset. */
    public synchronized long write(MemorySegment src) {
        long at = end.get(), len = staged(src.byteSize());
        if (at + len > cap) {
            throw new OffloadException(String.format("disk cap exceeded: %,d bytes needed beyond %,d, cap %,d; give more --disk-mem",
                    len, at, cap));
        }
        try {
            ByteBuffer b = src.asByteBuffer();
            long pos = at;
            while (b.hasRemaining()) pos += writer.write(b, pos);
            // Pad to the block boundary, so that a direct read of whole blocks never runs into the end of the file.
            ByteBuffer pad = ByteBuffer.allocate((int) (at + len - pos));
            while (pad.hasRemaining()) pos += writer.write(pad, pos);
            end.set(at + len);
            return at;
        } catch (IOException e) {
            throw new OffloadException("writing " + src.byteSize() + " bytes to " + file + ": " + e.getMessage(), e);
        }
    }

    /** Reads the record at {@code offset} ({@code bytes} long) into {@code dst}, which holds {@link #staged} bytes, 4 KiB aligned. */
    public void read(long offset, long bytes, MemorySegment dst) {
        long len = direct ? staged(bytes) : bytes;
        if (dst.byteSize() < len) throw new IllegalArgumentException("staging of " + dst.byteSize() + " bytes for a read of " + len);
        try {
            ByteBuffer b = dst.asSlice(0, len).asByteBuffer();
            long pos = offset;
            while (b.hasRemaining()) {
                int n = reader.read(b, pos);
                if (n < 0) break;
                pos += n;
            }
            if (pos - offset < bytes) throw new OffloadException("short read of " + file + " at " + offset + ": " + (pos - offset) + " of " + bytes);
            bytesRead.addAndGet(bytes);
        } catch (IOException e) {
            throw new OffloadException("reading " + bytes + " bytes of " + file + " at " + offset + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        try {
            writer.close();
            reader.close();
            Files.deleteIfExists(file);
        } catch (IOException e) {
            throw new OffloadException("closing the disk tier " + file + ": " + e.getMessage(), e);
        }
    }
}
