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

    /**
     * One weight made of {@code parts} stacked by rows (same input width), so that one product computes all of them
     * (q|k|v, gate|up): fewer, larger products. Returns null when the backend prefers separate products; the forward
     * pass then reads the parts of the output through {@link Activation#columns}.
     */
    default Weight uploadStacked(String name, java.util.List<Tensor> parts) { return null; }

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

    /**
     * out[r] = (x[r] - mean(x[r])) / sqrt(var(x[r]) + eps) * gamma + beta, with the biased variance over the row
     * (PyTorch's LayerNorm; OPT's norms).
     */
    void layerNorm(Activation x, Weight gamma, Weight beta, float eps, Activation out);

    /** x = max(x, 0), element-wise, in place (OPT's activation). */
    void relu(Activation x);

    /** x[r] = max(x[r] + bias, 0): a product's bias and the ReLU after it in one pass where fused (OPT's fc1). */
    default void addBiasRelu(Activation x, Weight bias) {
        addBias(x, bias);
        relu(x);
    }

    /**
     * x[t] += row positions[t] + offset of {@code table}: learned absolute position embeddings (OPT: offset 2). The
     * positions are the step's own array (what beginStep was given), so a device backend reads them where they are.
     */
    void addPositionEmbedding(Activation x, Weight table, int[] positions, int offset);

    /** acc += x, element-wise (the residual connection). */
    void add(Activation acc, Activation x);

    /** Rotates each head of every row in place by its token's position. x.cols() == heads * rope.headDim(). */
    void rope(Activation x, int heads, int[] positions, Rope rope);

    /** out = silu(gate) * up, element-wise. */
    void swiglu(Activation gate, Activation up, Activation out);

    /**
     * out = (silu(gate) * up) * W^T, with {@code scratch} (rows x W.cols()) receiving the SwiGLU product; a backend may
     * fuse the two and compute the product on the fly (decode-sized batches), leaving scratch unwritten.
     */
    default void swigluMatmul(Activation gate, Activation up, Activation scratch, Weight w, Activation out) {
        swiglu(gate, up, scratch);
        matmul(scratch, w, out);
    }

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

    /**
     * Called once per step, before its ops, with the arrays those ops will be given, so that a backend can move all
     * of the step's metadata to its memory in one transfer. {@code blockTableStride} bounds every block table's
     * length for the model's context (a fixed stride lets a recorded step be replayed).
     */
    default void beginStep(int[] tokens, int[] positions, int[] slots, AttentionBatch batch, int blockTableStride) {}

    /** acc += x, then out = rmsNorm(acc) * gamma: the residual add fused with the norm that follows it. */
    default void addRmsNorm(Activation acc, Activation x, Weight gamma, float eps, Activation out) {
        add(acc, x);
        rmsNorm(acc, gamma, eps, out);
    }

    /** acc += x, then out = layerNorm(acc) * gamma + beta: the residual add fused with the LayerNorm after it (OPT). */
    default void addLayerNorm(Activation acc, Activation x, Weight gamma, Weight beta, float eps, Activation out) {
        add(acc, x);
        layerNorm(acc, gamma, beta, eps, out);
    }

    /** RoPE on q ({@code heads}) and k ({@code kvHeads}), then k and v into their KV slots; one pass where fused. */
    default void ropeWriteKv(Activation q, Activation k, Activation v, int heads, int kvHeads, int[] positions, Rope rope,
                             KvStorage kv, int layer, int[] slots) {
        rope(q, heads, positions, rope);
        rope(k, kvHeads, positions, rope);
        writeKv(kv, layer, k, v, slots);
    }

    /**
     * Greedy sampling where the logits live: out[r] = the index of row r's largest value, the lowest index on ties.
     * A GPU backend returns one int per row instead of a vocabulary of floats.
     */
    default void argmax(Activation logits, int[] out) {
        float[] row = new float[logits.cols()];
        for (int r = 0; r < out.length; r++) {
            read(logits, r, row);
            int best = 0;
            for (int c = 1; c < row.length; c++) if (row[c] > row[best]) best = c;
            out[r] = best;
        }
    }

    /** Whether {@link #sample} runs where the logits live (a GPU), so callers sample there instead of reading logits. */
    default boolean samplesOnDevice() { return false; }

    /**
     * Samples one token per row of {@code logits}, which it may overwrite: temperature (0: greedy), top-k (0: off),
     * top-p (1: off), min-p (0: off), with {@code uniform[r]} in [0, 1) as row r's random draw. No penalties: callers
     * apply those on the host. Only backends that answer {@link #samplesOnDevice()} implement it.
     */
    default void sample(Activation logits, float[] temperature, int[] topK, float[] topP, float[] minP, float[] uniform, int[] out) {
        throw new UnsupportedOperationException(name() + " samples on the host");
    }

    /**
     * The row count a decode-only step of {@code n} sequences should be padded to so that the backend can replay a
     * recorded step of that size (CUDA graphs), or 0 when this backend does not replay steps. Padding rows carry
     * slot -1 (no KV write) and are ignored.
     */
    default int replayRows(int n) { return 0; }

    /**
     * Runs one step's ops; a replaying backend records them the first time for ({@code owner}, {@code rows}) and
     * replays them after. {@code owner} identifies the buffers the ops use (model and KV cache): a recording is only
     * valid for the memory it was made with.
     */
    default void replay(Object owner, int rows, Runnable step) { step.run(); }

    /** Releases what this backend allocated. */
    @Override
    void close();
}
