package dev.tandem.cluster.device;

import dev.tandem.cuda.CudaDriver;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One side's buffers for a layer's hand-over on one device: the block ids (copied from pageable host memory, which
 * the driver stages before the call returns, so the host side is free at once) and the gathered keys and values.
 * Both are reused message after message in stream order; they grow to the largest message seen (a grow first
 * drains the stream). Used by one thread, with its device context current.
 */
final class Staging implements AutoCloseable {
    private final CudaDriver cuda;
    private final MemorySegment stream;
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
            cuda.synchronize(stream);
            if (ids != 0) cuda.free(ids);
            idsCapacity = Math.max(blocks.length, 2 * idsCapacity);
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
            cuda.synchronize(stream);
            if (data != 0) cuda.free(data);
            dataCapacity = Math.max(bytes, 2 * dataCapacity);
            data = cuda.malloc(dataCapacity);
        }
        return data;
    }

    @Override
    public void close() {
        if (ids != 0) cuda.free(ids);
        if (data != 0) cuda.free(data);
        ids = data = 0;
    }
}
