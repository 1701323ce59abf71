package dev.tandem.core.tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A named, typed view of weight bytes, usually a slice of a memory-mapped model file.
 * Shape is row-major with the last dimension contiguous: a linear layer's weight is [out, in].
 */
public record Tensor(String name, DType dtype, long[] shape, MemorySegment data) {

    public Tensor {
        long need = dtype.bytesFor(elements(shape));
        if (data.byteSize() != need) {
            throw new IllegalArgumentException("tensor '" + name + "': " + dtype + " " + Arrays.toString(shape)
                    + " needs " + need + " bytes, got " + data.byteSize());
        }
    }

    public static long elements(long[] shape) {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    public long elements() { return elements(shape); }

    public int rows() { return shape.length == 1 ? 1 : (int) (elements() / shape[shape.length - 1]); }

    public int cols() { return (int) shape[shape.length - 1]; }

    public String shapeString() { return Arrays.toString(shape); }

    @Override
    public String toString() { return name + " " + dtype + " " + shapeString(); }
}
