package dev.tandem.offload.exec;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.Weight;
import dev.tandem.core.tensor.Tensor;

import java.lang.foreign.MemorySegment;

/**
 * The compute side of an offloaded run: a {@link Backend} for the ops, plus what the block schedule moves between
 * tiers. Two implementations: the CUDA backend (tiers: GPU memory, pinned CPU memory, disk; weights stream in on a
 * copy stream) and the CPU backend (tiers: a RAM budget and disk; the "device" is the CPU itself).
 */
public interface OffloadDevice extends AutoCloseable {
    Backend backend();

    /** Makes this device the calling thread's (a pipeline stage runs on a thread of its own; a CUDA context is per thread). */
    default void bindThread() {}

    /** Host memory for caches, staged weights and activations (pinned on the CUDA path). */
    HostMemory host();

    /** True on the CPU path: there is no device memory, so KV caches and attention always live on the host. */
    boolean hostOnly();

    /**
     * Streamed matrices are kept 4-bit (FlexGen's group-wise format, groups of 64 output channels) on the host and on
     * disk and decompressed on the device; resident ones take the same rounding. Set before any weight is placed.
     */
    void compressWeights(boolean on);

    /**
     * How compression picks each group's range: least squares by default ({@code WeightCompression.DEFAULT_RANGE}),
     * min / max for synthetic weights, whose throughput runs have no accuracy to protect and whose least-squares
     * search would cost hours at 30B shapes. Set before any weight is placed.
     */
    void weightRange(dev.tandem.core.quant.GroupQuant4.Range range);

    /**
     * A matrix kept in device memory for the whole run; {@code layerMatrix} false for the embeddings and the output head,
     * which compression leaves as stored (as {@code WeightCompression} does).
     */
    Weight resident(Tensor matrix, boolean layerMatrix);

    /** Bytes the host and disk tiers keep of a matrix: what {@link #toStreamed} writes and {@link #load} reads. */
    long streamedBytes(MatrixShape matrix);

    /** Writes a matrix in the form {@link #load} takes (bf16 on CUDA; the file's own type on the CPU). */
    void toStreamed(Tensor matrix, MemorySegment dst);

    /** A device buffer that holds one streamed matrix shaped like {@code matrix} at a time. */
    Slot slot(MatrixShape matrix);

    /** A reusable device buffer for streamed weights; {@link #weight()} is valid for the matrix last loaded. */
    interface Slot {
        Weight weight();
    }

    /**
     * Starts moving a streamed matrix from host memory into a slot; compute issued after {@link #awaitLoads()} sees it.
     * On the CUDA path the copy runs on its own stream; on the CPU path it packs the matrix for the kernels now.
     */
    void load(Slot slot, MatrixShape shape, MemorySegment src);

    /** Called once compute waits for a slot's load: a compressed matrix is decompressed into the slot here. */
    default void ready(Slot slot, MatrixShape shape) {}

    /** Marks the loads issued so far as one group and returns a handle to wait for it. */
    Object loadsIssued();

    /** Blocks the calling thread until that group of loads (or compute) is done. */
    void hostWait(Object handle);

    /** Compute issued from now on waits for that group of loads. */
    void computeAfter(Object loads);

    /** A handle for the compute issued so far (a later load into the same slots must wait for it). */
    Object computeIssued();

    /** Loads issued from now on wait for that compute. */
    void loadsAfter(Object compute);

    /** Copies rows of a whole activation to host memory (f32); visible to the host after {@link #synchronize()}. */
    void toHost(Activation x, int rows, MemorySegment dst, long offset);

    /** Copies f32 rows from host memory into a whole activation. */
    void fromHost(MemorySegment src, long offset, Activation x, int rows);

    /**
     * Positions [0, count) of sequences {@code first} .. {@code first + sequences - 1} of a host cache layer into a device
     * KV layer, sequence s's position p at slot {@code s * cache.capacity() + p}: a GPU batch's layer for one decode step
     * (or one sequence's, with {@code sequences} 1), in one strided copy.
     */
    void kvFromHost(HostKvCache cache, int cacheLayer, int first, int sequences, int count, KvStorage kv, int layer);

    /**
     * The inverse of {@link #kvFromHost}: positions [position, position + count) of each sequence back to the host;
     * visible after {@link #synchronize()}. Into a compressed cache the slots are compressed on the way, and the device
     * slots then hold the decompressed values (what a later step reads back), so that attention over them matches
     * attention over the host cache.
     */
    void kvToHost(KvStorage kv, int layer, int first, int sequences, int position, int count, HostKvCache cache, int cacheLayer);

    /** Bytes per KV element the device's caches use. */
    int kvElementBytes();

    /** Waits until issued compute and its copies are done. */
    void synchronize();

    /** Device bytes in use now (weights, slots, activations, caches); 0 on the CPU path. */
    long deviceBytes();

    @Override
    void close();
}
