package dev.tandem.cuda.backend;

import dev.tandem.core.backend.KvLayout;
import dev.tandem.cuda.CudaDriver;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The hand-over kernels: a sequence's scattered blocks of one layer gathered into one buffer (keys then values,
 * in the sequence's order) and scattered into other blocks of another cache, byte for byte, other blocks untouched.
 */
class CudaKvCopyTest {
    @Test
    void gatherThenScatterMovesExactlyTheSequencesBlocksOfOneLayer() {
        String why = CudaDriver.unavailableReason();
        assumeTrue(why == null, "no CUDA GPU here (" + why + ")");
        CudaDriver cuda = CudaDriver.get();
        KvLayout layout = new KvLayout(3, 10, 16, 2, 8);
        for (CudaBackend.Precision p : CudaBackend.Precision.values()) {
            try (CudaBackend from = new CudaBackend(0, p); CudaBackend to = new CudaBackend(0, p); Arena a = Arena.ofConfined()) {
                CudaBackend.CudaKv src = (CudaBackend.CudaKv) from.allocateKv(layout), dst = (CudaBackend.CudaKv) to.allocateKv(layout);
                long total = 2L * layout.layers() * src.layerBytes(), block = from.kvBlockBytes(src);
                MemorySegment pattern = a.allocate(total);
                for (long i = 0; i < total; i++) pattern.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 13 + i / 4096));
                cuda.copyToDevice(src.base(), pattern, total);
                int[] seq = {7, 2, 9}, reserved = {0, 5, 4};
                int layer = 1, n = seq.length;
                long ids = cuda.malloc(4L * n), staging = cuda.malloc(2 * n * block);
                MemorySegment stream = from.stream();
                cuda.copyToDevice(ids, a.allocateFrom(ValueLayout.JAVA_INT, seq), 4L * n);
                from.gatherKv(src, layer, ids, n, staging, stream);
                cuda.synchronize(stream);
                MemorySegment gathered = a.allocate(2 * n * block);
                cuda.copyToHost(gathered, staging, 2 * n * block);
                for (int i = 0; i < n; i++) {
                    long keys = (2L * layer) * src.layerBytes() + seq[i] * block, values = keys + src.layerBytes();
                    assertEquals(-1L, gathered.asSlice(i * block, block).mismatch(pattern.asSlice(keys, block)), p + ": keys of block " + seq[i]);
                    assertEquals(-1L, gathered.asSlice((n + i) * block, block).mismatch(pattern.asSlice(values, block)), p + ": values of block " + seq[i]);
                }
                cuda.copyToDevice(ids, a.allocateFrom(ValueLayout.JAVA_INT, reserved), 4L * n);
                to.scatterKv(dst, layer, ids, n, staging, stream);
                cuda.synchronize(stream);
                MemorySegment after = a.allocate(total);
                cuda.copyToHost(after, dst.base(), total);
                for (int l = 0; l < layout.layers(); l++) {
                    for (int b = 0; b < layout.numBlocks(); b++) {
                        int at = l == layer ? java.util.Arrays.stream(reserved).boxed().toList().indexOf(b) : -1;
                        for (int kv = 0; kv < 2; kv++) {
                            long off = (2L * l + kv) * src.layerBytes() + b * block;
                            MemorySegment got = after.asSlice(off, block);
                            if (at < 0) {
                                assertEquals(-1L, got.mismatch(a.allocate(block)), p + ": layer " + l + " block " + b + " stayed zero");
                            } else {
                                long from0 = (2L * layer + kv) * src.layerBytes() + seq[at] * block;
                                assertEquals(-1L, got.mismatch(pattern.asSlice(from0, block)), p + ": block " + b + " holds block " + seq[at]);
                            }
                        }
                    }
                }
                cuda.free(ids);
                cuda.free(staging);
            }
        }
    }
}
