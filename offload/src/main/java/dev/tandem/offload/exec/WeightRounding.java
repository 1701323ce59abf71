package dev.tandem.offload.exec;

import dev.tandem.core.quant.Gq4Layout;
import dev.tandem.core.quant.GroupQuant4;
import dev.tandem.core.quant.WeightCompression;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * FlexGen's weight compression as the executor uses it: a matrix [out, in] in 4-bit groups of 64 output channels
 * (GQ4 grouped along dimension 0), each group's range chosen as {@link WeightCompression} chooses it (on the CPU,
 * once, whatever the device), decompressed to bf16 where it is used.
 */
final class WeightRounding {
    private WeightRounding() {}

    static Gq4Layout layout(MatrixShape m) { return Gq4Layout.of(0, m.rows(), m.cols()); }

    static void compress(Tensor matrix, GroupQuant4.Range range, MemorySegment dst) {
        GroupQuant4.quantize(matrix.data(), matrix.dtype(), layout(MatrixShape.of(matrix)), dst, 0, range);
    }

    /** The compressed bytes at {@code src} as bf16 rows into {@code dst}. */
    static void decompress(MatrixShape m, MemorySegment src, MemorySegment dst) {
        GroupQuant4.dequantizeRows(src, 0, layout(m), 0, m.rows(), dst, 0, DType.BF16);
    }

    /** The matrix with the values compression leaves (for weights kept resident, so that every matrix sees the same rounding). */
    static Tensor roundTrip(Tensor matrix, GroupQuant4.Range range, Arena arena) {
        MatrixShape m = MatrixShape.of(matrix);
        MemorySegment packed = arena.allocate(layout(m).packedBytes(), 64), out = arena.allocate(2 * m.elements(), 64);
        compress(matrix, range, packed);
        decompress(m, packed, out);
        return new Tensor(matrix.name(), DType.BF16, matrix.shape(), out);
    }
}
