package dev.tandem.offload.calibrate;

import com.sun.nio.file.ExtendedOpenOption;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Disk write and read bandwidth with large aligned blocks, as the offloading executor reads weights and KV cache:
 * direct I/O (O_DIRECT through {@link ExtendedOpenOption#DIRECT}) where the file system offers it, so that the page
 * cache neither absorbs the writes nor serves the reads. Where it does not (tmpfs, some overlay file systems), the
 * writes are forced to the device and the figures say that the reads may have come from the page cache.
 */
public final class DiskProbe {
    /** @param direct whether O_DIRECT was used; without it the read figure may be the page cache's */
    public record Rates(double writeBytesPerSecond, double readBytesPerSecond, boolean direct, long bytes) {}

    private DiskProbe() {}

    /** Writes then reads {@code bytes} (rounded up to whole blocks) in a temporary file under {@code dir}, then deletes it. */
    public static Rates measure(Path dir, long bytes, int blockBytes) throws IOException {
        if (!Files.isDirectory(dir)) throw new IllegalArgumentException("--disk-dir " + dir + ": not a directory");
        long blocks = Math.max(1, Math.ceilDiv(bytes, blockBytes));
        Path file = Files.createTempFile(dir, "tandem-calibrate-", ".bin");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(blockBytes, 1 << 12);  // O_DIRECT wants aligned memory, offsets and sizes
            for (long i = 0; i < blockBytes; i += 8) buf.set(ValueLayout.JAVA_LONG_UNALIGNED, i, i * 0x9E3779B97F4A7C15L);
            boolean direct = true;
            FileChannel w;
            try {
                w = open(file, true, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
            } catch (UnsupportedOperationException | IOException e) {
                direct = false;
                w = open(file, false, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
            }
            long t0 = System.nanoTime();
            try (FileChannel ch = w) {
                for (long b = 0; b < blocks; b++) writeFully(ch, buf.asByteBuffer(), b * blockBytes);
                ch.force(false);
            }
            double write = blocks * (double) blockBytes / ((System.nanoTime() - t0) / 1e9);
            t0 = System.nanoTime();
            try (FileChannel ch = open(file, direct, StandardOpenOption.READ)) {
                for (long b = 0; b < blocks; b++) readFully(ch, buf.asByteBuffer(), b * blockBytes);
            }
            double read = blocks * (double) blockBytes / ((System.nanoTime() - t0) / 1e9);
            return new Rates(write, read, direct, blocks * blockBytes);
        } finally {
            Files.deleteIfExists(file);
        }
    }

    private static FileChannel open(Path file, boolean direct, OpenOption... options) throws IOException {
        List<OpenOption> o = new ArrayList<>(List.of(options));
        if (direct) o.add(ExtendedOpenOption.DIRECT);
        return FileChannel.open(file, o.toArray(OpenOption[]::new));
    }

    private static void writeFully(FileChannel ch, ByteBuffer b, long at) throws IOException {
        while (b.hasRemaining()) at += ch.write(b, at);
    }

    private static void readFully(FileChannel ch, ByteBuffer b, long at) throws IOException {
        while (b.hasRemaining()) {
            int n = ch.read(b, at);
            if (n < 0) throw new IOException("unexpected end of file at byte " + at);
            at += n;
        }
    }
}
