package dev.tandem.core.backend;

import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;

/** A weight kept exactly as stored in the file: the reference backend's form, and the CPU kernels' input. */
public record TensorWeight(Tensor tensor) implements Weight {
    @Override
    public String name() { return tensor.name(); }

    @Override
    public DType dtype() { return tensor.dtype(); }

    @Override
    public int rows() { return tensor.rows(); }

    @Override
    public int cols() { return tensor.cols(); }

    /** Decodes row r into dst[0, cols). */
    public void decodeRow(int r, float[] dst) {
        Codec.decode(tensor.dtype(), tensor.data(), (long) r * cols(), dst, 0, cols());
    }

    public float[] decodeAll() {
        float[] out = new float[Math.toIntExact(tensor.elements())];
        Codec.decode(tensor.dtype(), tensor.data(), 0, out, 0, out.length);
        return out;
    }
}
