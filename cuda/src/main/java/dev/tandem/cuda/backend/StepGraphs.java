package dev.tandem.cuda.backend;

import dev.tandem.cuda.CudaDriver;
import dev.tandem.cuda.CudaException;

import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;

/**
 * Steps recorded as CUDA graphs and replayed. A step of a given key (its owner's buffers, its row count, its
 * block-table stride) runs eagerly the first time (cuBLASLt picks its algorithms, buffers reach their size), is
 * recorded the second time, and is replayed after that. The ops of a replayable step must depend only on the key:
 * while one runs, {@link #replaying()} tells them to size launches for the key rather than for this step's lengths,
 * and {@link #capturing()} forbids anything that cannot be recorded (host copies, allocations).
 */
final class StepGraphs {
    /** What a recording is valid for. */
    record Key(Object owner, int rows, int blockTableStride) {}

    private final CudaDriver cuda;
    private final MemorySegment stream;
    private final Map<Key, MemorySegment> recorded = new HashMap<>();
    private final Map<Key, Integer> eagerRuns = new HashMap<>();
    private boolean capturing;
    private boolean replaying;

    StepGraphs(CudaDriver cuda, MemorySegment stream) {
        this.cuda = cuda;
        this.stream = stream;
    }

    /** Whether a graph is being recorded now. */
    boolean capturing() { return capturing; }

    /** Whether the ops running now belong to a replayable step (eager, recorded or replayed). */
    boolean replaying() { return replaying; }

    /** Runs, records or replays the step of {@code key} on the stream. */
    void run(Key key, Runnable stepOps) {
        MemorySegment g = recorded.get(key);
        if (g != null) {
            cuda.launchGraph(g, stream);
            return;
        }
        replaying = true;
        try {
            if (eagerRuns.merge(key, 1, Integer::sum) < 2) {
                stepOps.run();
                return;
            }
            record(key, stepOps);
        } finally {
            replaying = false;
        }
    }

    private void record(Key key, Runnable stepOps) {
        cuda.beginCapture(stream);
        capturing = true;
        try {
            stepOps.run();
        } catch (RuntimeException e) {
            capturing = false;
            try {
                cuda.destroyGraph(cuda.endCapture(stream));
            } catch (CudaException ignored) {
                // the capture was already invalid
            }
            throw e;
        }
        capturing = false;
        MemorySegment g = cuda.endCapture(stream);
        recorded.put(key, g);
        cuda.launchGraph(g, stream);
    }

    /** Forgets every recording (a buffer they point into was reallocated, or the backend closes). */
    void clear() {
        for (MemorySegment g : recorded.values()) cuda.destroyGraph(g);
        recorded.clear();
        eagerRuns.clear();
    }
}
