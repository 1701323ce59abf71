package dev.tandem.offload.exec;

import dev.tandem.core.backend.Weight;
import dev.tandem.core.tensor.Tensor;
import dev.tandem.offload.policy.OffloadPolicy;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The model's weights placed on the tiers a policy asks for, and streamed to the device layer by layer.
 *
 * <p>Placement follows FlexGen: within every layer, the matrices in order take the first {@code weightGpuPercent} of
 * the layer's bytes on the device (resident for the whole run), the next {@code weightCpuPercent} in host memory and
 * the rest on disk; a matrix goes to the tier its midpoint falls in. Norm gains, biases, embeddings and the output head
 * stay resident.
 *
 * <p>Streaming is double-buffered by the parity of the layer's position in the run: while layer n computes from
 * slots {@code n % 2}, layer n + 1's matrices arrive in the others. The disk tier is read by an I/O thread into staging
 * buffers one layer ahead of the copies.
 */
final class OffloadedWeights implements AutoCloseable {
    enum Tier { DEVICE, HOST, DISK }

    private final OffloadDevice device;
    private final LayerProgram program;
    private final int layers;
    private final Weight[] globals;
    private final Weight[][] vectors;
    /** Per layer and matrix: its tier, its resident weight (DEVICE), its host copy (HOST) or disk offset (DISK). */
    private final Tier[][] tiers;
    private final Weight[][] resident;
    private final MemorySegment[][] hostCopies;
    private final long[][] diskOffsets;
    private final MatrixShape[] shapes;
    private final OffloadDevice.Slot[][] slots;
    private final MemorySegment[][] staging;
    private final DiskStore disk;
    private final ExecutorService io;
    private final Future<?>[] reads = new Future<?>[2];
    private final Object[] loaded = new Object[2], computed = new Object[2];
    private long next;
    private final long[] bytesByTier = new long[3];

    /**
     * The weights of layers [first, first + layers) (indexed from 0 here), with the globals the embedding needs when
     * {@code embeds} and those the output head needs when {@code head} (a pipeline stage holds only its own).
     */
    OffloadedWeights(OffloadDevice device, LayerProgram program, int first, int layers, boolean embeds, boolean head, OffloadPolicy policy,
                     DiskStore disk) {
        this.device = device;
        this.program = program;
        this.layers = layers;
        this.disk = disk;
        List<Tensor> g = program.globals();
        globals = new Weight[g.size()];
        for (int i = 0; i < g.size(); i++) {
            if (!(i < program.embeddingGlobals() ? embeds : head)) continue;
            Tensor t = g.get(i);
            boolean same = false;
            for (int j = 0; j < i; j++) if (g.get(j) == t && globals[j] != null) { globals[i] = globals[j]; same = true; }
            if (!same) globals[i] = t.shape().length == 1 ? device.backend().upload(t) : device.resident(t, false);
        }
        vectors = new Weight[layers][];
        tiers = new Tier[layers][];
        resident = new Weight[layers][];
        hostCopies = new MemorySegment[layers][];
        diskOffsets = new long[layers][];
        int n = 0;
        MatrixShape[] firstShapes = null;
        for (int l = 0; l < layers; l++) {
          try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            vectors[l] = program.vectors(first + l, arena).stream().map(t -> device.backend().upload(keep(t))).toArray(Weight[]::new);
            List<Tensor> m = program.matrices(first + l, arena);
            if (l == 0) {
                n = m.size();
                firstShapes = m.stream().map(MatrixShape::of).toArray(MatrixShape[]::new);
            }
            tiers[l] = place(m, policy);
            resident[l] = new Weight[m.size()];
            hostCopies[l] = new MemorySegment[m.size()];
            diskOffsets[l] = new long[m.size()];
            for (int i = 0; i < m.size(); i++) {
                Tensor t = m.get(i);
                long bytes = device.streamedBytes(MatrixShape.of(t));
                bytesByTier[tiers[l][i].ordinal()] += bytes;
                switch (tiers[l][i]) {
                    case DEVICE -> resident[l][i] = device.resident(t, true);
                    case HOST -> {
                        if (device.hostOnly()) {
                            resident[l][i] = device.resident(t, true);
                        } else {
                            hostCopies[l][i] = device.host().allocate(bytes);
                            device.toStreamed(t, hostCopies[l][i]);
                        }
                    }
                    case DISK -> {
                        if (disk == null) throw new OffloadException("the policy puts weights on disk but no disk tier was given");
                        MemorySegment tmp = arena.allocate(bytes, 64);
                        device.toStreamed(t, tmp);
                        diskOffsets[l][i] = disk.write(tmp);
                    }
                }
            }
          }
        }
        shapes = firstShapes;
        // Slots and staging only for the matrices some layer streams.
        slots = new OffloadDevice.Slot[2][n];
        staging = new MemorySegment[2][n];
        for (int i = 0; i < n; i++) {
            boolean streamed = false, fromDisk = false;
            for (int l = 0; l < layers; l++) {
                streamed |= resident[l][i] == null;
                fromDisk |= tiers[l][i] == Tier.DISK;
            }
            for (int p = 0; p < 2; p++) {
                if (streamed) slots[p][i] = device.slot(shapes[i]);
                if (fromDisk) staging[p][i] = device.host().allocate(DiskStore.staged(device.streamedBytes(shapes[i])));
            }
        }
        io = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "tandem-offload-io");
            t.setDaemon(true);
            return t;
        });
    }

    private final java.lang.foreign.Arena kept = java.lang.foreign.Arena.ofShared();

    /** A copy of a small tensor that outlives the layer's arena (a CPU weight reads its source lazily). */
    private Tensor keep(Tensor t) {
        MemorySegment m = kept.allocate(Math.max(1, t.data().byteSize()), 64).asSlice(0, t.data().byteSize());
        MemorySegment.copy(t.data(), 0, m, 0, t.data().byteSize());
        return new Tensor(t.name(), t.dtype(), t.shape(), m);
    }

    /**
     * FlexGen's rule, applied as FlexGen applies it: the attention and the FFN of a layer are placed separately; within
     * each, a matrix goes to the tier in which the midpoint of its bytes falls. A stacked matrix (q|k|v) is placed part by
     * part and goes, whole, to the tier that holds most of its bytes.
     */
    private Tier[] place(List<Tensor> m, OffloadPolicy policy) {
        Tier[] out = new Tier[m.size()];
        int split = program.attentionMatrices();
        placeGroup(m, 0, split, policy, out);
        placeGroup(m, split, m.size(), policy, out);
        return out;
    }

    private void placeGroup(List<Tensor> m, int from, int to, OffloadPolicy policy, Tier[] out) {
        long total = 0;
        for (int i = from; i < to; i++) total += device.streamedBytes(MatrixShape.of(m.get(i)));
        long at = 0;
        for (int i = from; i < to; i++) {
            Tensor t = m.get(i);
            long[] byTier = new long[3];
            long perRow = device.streamedBytes(MatrixShape.of(t)) / t.rows();
            for (int rows : program.parts(i, t)) {
                long b = perRow * rows;
                double mid = 100.0 * (at + b / 2.0) / total;
                Tier tier = mid < policy.weightGpuPercent() ? Tier.DEVICE
                        : mid < policy.weightGpuPercent() + policy.weightCpuPercent() ? Tier.HOST : Tier.DISK;
                byTier[tier.ordinal()] += b;
                at += b;
            }
            int best = 0;
            for (int k = 1; k < 3; k++) if (byTier[k] > byTier[best]) best = k;
            out[i] = Tier.values()[best];
        }
    }

    Weight[] globals() { return globals; }

    Weight[] vectors(int layer) { return vectors[layer]; }

    /** Bytes of matrices on each tier (device, host, disk). */
    long[] bytesByTier() { return bytesByTier.clone(); }

    int layers() { return layers; }

    long diskBytesRead() { return disk == null ? 0 : disk.bytesRead(); }

    /**
     * Starts bringing the {@code n}-th layer of the run (layer n % layers) into slots n % 2. Call it right before the
     * compute of layer n - 1 is issued: slots n % 2 were last used by layer n - 2.
     *
     * <p>CPU path: an I/O task reads the layer's disk-tier matrices and packs them into the slots while layer n - 1
     * computes. CUDA path: the disk reads were started one layer earlier into staging buffers; the host-to-device copies
     * are queued on the copy stream behind the compute that last used the slots, and the next layer's disk reads start.
     */
    void prefetch(long n) {
        if (n != next) throw new IllegalStateException("layers are streamed in order: expected " + next + ", got " + n);
        next = n + 1;
        int p = (int) (n & 1), l = (int) (n % layers);
        if (device.hostOnly()) {
            reads[p] = io.submit(() -> readInto(n));
            return;
        }
        Future<?> read = reads[p];
        reads[p] = null;
        await(read != null ? read : io.submit(() -> readInto(n)));
        if (computed[p] != null) device.loadsAfter(computed[p]);
        for (int i = 0; i < shapes.length; i++) {
            switch (tiers[l][i]) {
                case HOST -> device.load(slots[p][i], shapes[i], hostCopies[l][i]);
                case DISK -> device.load(slots[p][i], shapes[i], staging[p][i]);
                default -> { }
            }
        }
        loaded[p] = device.loadsIssued();
        // The next layer's disk reads go into the other staging buffers once the copies out of them (layer n - 1) are done.
        Object copiesOut = loaded[1 - p];
        reads[1 - p] = io.submit(() -> {
            if (copiesOut != null) device.hostWait(copiesOut);
            readInto(n + 1);
        });
    }

    /** Reads the {@code n}-th layer's disk-tier matrices into staging n % 2 (and, on the CPU path, packs them into the slots). */
    private void readInto(long n) {
        int p = (int) (n & 1), l = (int) (n % layers);
        for (int i = 0; i < shapes.length; i++) {
            if (tiers[l][i] == Tier.DISK) {
                disk.read(diskOffsets[l][i], device.streamedBytes(shapes[i]), staging[p][i]);
                if (device.hostOnly()) device.load(slots[p][i], shapes[i], staging[p][i]);
            }
        }
    }

    private static void await(Future<?> f) {
        try {
            f.get();
        } catch (java.util.concurrent.ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException r) throw r;
            throw new OffloadException("reading weights from disk: " + c, c);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new OffloadException("interrupted while reading weights from disk", e);
        }
    }

    /** The {@code n}-th layer's matrices, once compute issued from now on is ordered after their loads. */
    Weight[] acquire(long n) {
        if (n >= next) throw new IllegalStateException("layer " + n + " was not prefetched");
        int p = (int) (n & 1), l = (int) (n % layers);
        if (device.hostOnly()) {
            Future<?> r = reads[p];
            reads[p] = null;
            if (r != null) await(r);
        } else {
            device.computeAfter(loaded[p]);
            for (int i = 0; i < shapes.length; i++) if (resident[l][i] == null) device.ready(slots[p][i], shapes[i]);
        }
        Weight[] w = new Weight[shapes.length];
        for (int i = 0; i < w.length; i++) w[i] = resident[l][i] != null ? resident[l][i] : slots[p][i].weight();
        return w;
    }

    /** The {@code n}-th layer's compute is all issued: its slots may be refilled once that compute is done. */
    void release(long n) { computed[(int) (n & 1)] = device.computeIssued(); }

    @Override
    public void close() { io.shutdownNow(); }
}
