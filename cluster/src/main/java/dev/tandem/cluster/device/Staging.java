package dev.tandem.cluster.device;

import dev.tandem.cuda.CudaDriver;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * One side's buffers for a layer's hand-over on one device: the block ids (copied from pageable host memory, which
 * the driver stages before the call returns, so the host side is free at once) and the gathered keys and values.
 * Both are reused message after message in stream order. A larger message gets larger buffers; the outgrown ones
 * are kept until {@link #close}, so nothing is freed while the stream (or another thread's graph capture) runs.
 * Used by one thread, with its device context current.
 */
final class Staging implements AutoCloseable {
    private final CudaDriver cuda;
    private final MemorySegment stream;
    private final List<Long> outgrown = new ArrayList<>();
    private long ids, data;
    private int idsCapacity;
    private long dataCapacity;

    Staging(CudaDriver cuda, MemorySegment stream) {
        this.cuda = cuda;
        this.stream = stream;
    }

    /** Device address of {@code blocks}, whose copy is queued on the stream. */
    long ids(int[] blocks) {
        if (blocks.length > idsCapacity) {
            if (ids != 0) outgrown.add(ids);
            idsCapacity = Math.max(blocks.length, Math.max(1024, 2 * idsCapacity));
            ids = cuda.malloc(4L * idsCapacity);
        }
        try (Arena a = Arena.ofConfined()) {
            cuda.copyToDeviceAsync(ids, a.allocateFrom(ValueLayout.JAVA_INT, blocks), 4L * blocks.length, stream);
        }
        return ids;
    }

    /** Device address of at least {@code bytes} of staging. */
    long data(long bytes) {
        if (bytes > dataCapacity) {
            if (data != 0) outgrown.add(data);
            dataCapacity = Math.max(bytes, Math.max(16L << 20, 2 * dataCapacity));
            data = cuda.malloc(dataCapacity);
        }
        return data;
    }

    /** Frees everything; the stream must be idle. */
    @Override
    public void close() {
        if (ids != 0) outgrown.add(ids);
        if (data != 0) outgrown.add(data);
        for (long p : outgrown) cuda.free(p);
        outgrown.clear();
        ids = data = 0;
    }
}
