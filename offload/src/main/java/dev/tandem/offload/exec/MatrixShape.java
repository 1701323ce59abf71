package dev.tandem.offload.exec;

import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;

/** A streamed matrix's name, type and shape: what a slot is sized by once the tensor itself is gone. */
public record MatrixShape(String name, DType dtype, int rows, int cols) {
    public static MatrixShape of(Tensor t) { return new MatrixShape(t.name(), t.dtype(), t.rows(), t.cols()); }

    public long elements() { return (long) rows * cols; }

    long[] dims() { return new long[] {rows, cols}; }
}
