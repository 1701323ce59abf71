package dev.tandem.offload.exec;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Host memory for one run, counted against the run's CPU-memory cap. On the CUDA path it is page-locked, so that the
 * copy engines can move it while kernels run; on the CPU path it is plain native memory.
 */
public abstract class HostMemory implements AutoCloseable {
    private final long cap;
    private final AtomicLong used = new AtomicLong();
    private final AtomicLong peak = new AtomicLong();

    protected HostMemory(long cap) { this.cap = cap; }

    /** A zeroed segment of {@code bytes}, 64-byte aligned. */
    public final MemorySegment allocate(long bytes) {
        reserve(bytes);
        return allocateRaw(bytes);
    }

    /** Counts {@code bytes} held elsewhere (a backend's packed copy of a weight) against the cap. */
    public final void reserve(long bytes) {
        long now = used.addAndGet(bytes);
        if (now > cap) {
            used.addAndGet(-bytes);
            throw new OffloadException(String.format("CPU memory cap exceeded: %,d bytes needed with %,d already in use, cap %,d; "
                    + "give more --cpu-mem or place more on disk", bytes, now - bytes, cap));
        }
        peak.accumulateAndGet(now, Math::max);
    }

    protected abstract MemorySegment allocateRaw(long bytes);

    public long used() { return used.get(); }

    public long peak() { return peak.get(); }

    public long cap() { return cap; }

    @Override
    public abstract void close();

    /** Native memory from an arena: the CPU path's host tier. */
    public static HostMemory plain(long cap) {
        Arena arena = Arena.ofShared();
        return new HostMemory(cap) {
            @Override
            protected MemorySegment allocateRaw(long bytes) { return arena.allocate(Math.max(1, bytes), bytes >= DiskStore.ALIGN ? DiskStore.ALIGN : 64); }

            @Override
            public void close() { arena.close(); }
        };
    }
}
