package dev.tandem.core.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Vector API encoders for the bulk writers (random weights: gigabytes at a time), byte for byte the same as
 * {@link Codec}'s scalar reference; types without a vector path fall back to it.
 */
public final class VectorCodec {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));

    private VectorCodec() {}

    /** Encodes {@code n} values into {@code dst} at byte offset {@code dstByte}; returns the bytes written. */
    public static long encode(DType type, float[] src, int srcOff, int n, MemorySegment dst, long dstByte) {
        if (type != DType.BF16) return Codec.encode(type, src, srcOff, n, dst, dstByte);
        int i = 0;
        for (int lanes = F.length(); i <= n - lanes; i += lanes) {
            FloatVector v = FloatVector.fromArray(F, src, srcOff + i);
            IntVector bits = v.reinterpretAsInts();
            // Round to nearest even as Halfs.floatToBf16; NaN keeps its top bits and becomes quiet.
            IntVector rounded = bits.add(bits.lanewise(VectorOperators.LSHR, 16).and(1).add(0x7fff)).lanewise(VectorOperators.LSHR, 16);
            VectorMask<Integer> nan = v.test(VectorOperators.IS_NAN).cast(bits.species());
            IntVector out = rounded.blend(bits.lanewise(VectorOperators.LSHR, 16).or(0x40), nan);
            ShortVector s = (ShortVector) out.convertShape(VectorOperators.I2S, S, 0);
            s.intoMemorySegment(dst, dstByte + 2L * i, ByteOrder.LITTLE_ENDIAN);
        }
        Codec.encode(type, src, srcOff + i, n - i, dst, dstByte + 2L * i);
        return type.bytesFor(n);
    }
}
