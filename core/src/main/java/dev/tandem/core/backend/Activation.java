package dev.tandem.core.backend;

/** An f32 matrix in a backend's memory. {@link #rows(int)} views the first n rows of the same memory. */
public interface Activation {
    int rows();

    int cols();

    /** The first n rows of this buffer, sharing its memory. */
    Activation rows(int n);

    /**
     * Columns [from, from + count) of every row, sharing this buffer's memory (rows keep their original stride). Only
     * backends that fuse products ({@link Backend#uploadStacked}) support it; their ops accept such views as inputs.
     */
    default Activation columns(int from, int count) {
        throw new UnsupportedOperationException("this backend keeps activations contiguous");
    }
}
