package dev.tandem.offload.exec;

import dev.tandem.core.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** Matrices of one input width stacked by rows into one (q|k|v, gate|up): one product instead of several. */
final class Stacking {
    private Stacking() {}

    static Tensor rows(Arena arena, String name, Tensor... parts) {
        long rows = 0, bytes = 0;
        int cols = parts[0].cols();
        for (Tensor t : parts) {
            if (t.dtype() != parts[0].dtype() || t.cols() != cols) {
                throw new OffloadException("cannot stack " + t + " with " + parts[0] + ": one type and input width only");
            }
            rows += t.rows();
            bytes += t.data().byteSize();
        }
        MemorySegment data = arena.allocate(bytes, 64);
        long at = 0;
        for (Tensor t : parts) {
            MemorySegment.copy(t.data(), 0, data, at, t.data().byteSize());
            at += t.data().byteSize();
        }
        return new Tensor(name, parts[0].dtype(), new long[] {rows, cols}, data);
    }
}
