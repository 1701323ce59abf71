package dev.tandem.core.backend.cpu;

import dev.tandem.core.backend.Activation;

import java.lang.foreign.MemorySegment;

/** An f32 row-major matrix in native memory. */
public record CpuActivation(MemorySegment segment, int rows, int cols) implements Activation {
    public CpuActivation {
        if (segment.byteSize() < (long) rows * cols * Float.BYTES) {
            throw new IllegalArgumentException("segment too small for " + rows + "x" + cols);
        }
    }

    @Override
    public CpuActivation rows(int n) {
        if (n < 0 || n > rows) throw new IllegalArgumentException("view of " + n + " rows of a " + rows + "-row buffer");
        return new CpuActivation(segment, n, cols);
    }

    /** Byte offset of element (row, col). */
    public long offset(int row, int col) { return ((long) row * cols + col) * Float.BYTES; }

    public static CpuActivation of(Activation a) {
        if (a instanceof CpuActivation c) return c;
        throw new IllegalArgumentException("not a CPU activation: " + a.getClass().getSimpleName());
    }
}
