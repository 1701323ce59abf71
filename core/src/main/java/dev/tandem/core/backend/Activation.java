package dev.tandem.core.backend;

/** An f32 matrix in a backend's memory. {@link #rows(int)} views the first n rows of the same memory. */
public interface Activation {
    int rows();

    int cols();

    /** The first n rows of this buffer, sharing its memory. */
    Activation rows(int n);
}
