package dev.tandem.core.backend;

import dev.tandem.core.tensor.Tensor;

/**
 * The seam every forward pass is written against: device memory and the ops a transformer needs.
 * The CPU backend (Vector API), the scalar reference backend and the CUDA backend implement it; one
 * parameterised test compares them op by op.
 *
 * <p>Activations are f32 matrices of rows (tokens) by columns. An op works on {@code x.rows()} rows; a batch
 * smaller than the buffer uses {@link Activation#rows(int)}. Weights are [out, in] (row-major, the
 * input dimension contiguous), in their storage format.
 */
public interface Backend extends AutoCloseable {

    String name();

    /** Makes a weight usable by this backend's kernels: repacked or copied once at load, never per op. */
    Weight upload(Tensor tensor);

    /** A zeroed f32 activation buffer of rows x cols, owned by this backend. */
    Activation allocate(int rows, int cols);

    /** Paged KV-cache storage for all layers, owned by this backend. */
    KvStorage allocateKv(KvLayout layout);

    /** out[t] = row tokens[t] of the embedding table, as f32. */
    void embed(Weight table, int[] tokens, Activation out);

    /** out[r] = W * x[r] for every row r: out is rows x W.rows(), x is rows x W.cols(). */
    void matmul(Activation x, Weight w, Activation out);

    /** x[r] += bias for every row (bias is a 1-D weight of x.cols() values). */
    void addBias(Activation x, Weight bias);

    /** out[r] = x[r] / rms(x[r]) * gamma. */
    void rmsNorm(Activation x, Weight gamma, float eps, Activation out);

    /** acc += x, element-wise (the residual connection). */
    void add(Activation acc, Activation x);

    /** Rotates each head of every row in place by its token's position. x.cols() == heads * rope.headDim(). */
    void rope(Activation x, int heads, int[] positions, Rope rope);

    /** out = silu(gate) * up, element-wise. */
    void swiglu(Activation gate, Activation up, Activation out);

    /** Writes row t of k and v into KV slot slots[t] of the layer (slot = block * blockSize + offset). */
    void writeKv(KvStorage kv, int layer, Activation k, Activation v, int[] slots);

    /**
     * Causal attention for a mixed batch of prefill chunks and decode tokens, reading keys and values
     * through each sequence's block table. q is rows x (heads * headDim); out has the same shape.
     */
    void attention(Activation q, KvStorage kv, int layer, AttentionBatch batch, Activation out);

    /** out[i] = x[rows[i]]. */
    void gatherRows(Activation x, int[] rows, Activation out);

    /** Copies row {@code row} of x to the host. */
    void read(Activation x, int row, float[] dst);

    /** Releases what this backend allocated. */
    @Override
    void close();
}
