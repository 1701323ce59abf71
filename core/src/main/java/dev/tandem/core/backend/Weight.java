package dev.tandem.core.backend;

import dev.tandem.core.tensor.DType;

/** A weight prepared by a backend, in its storage format. Matrices are [rows = out, cols = in]. */
public interface Weight {
    String name();

    DType dtype();

    int rows();

    int cols();
}
