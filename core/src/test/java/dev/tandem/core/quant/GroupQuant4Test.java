package dev.tandem.core.quant;

import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Halfs;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GroupQuant4Test {

    /** Values 0..15 repeated: min 0, scale 1, every code is the value itself; the bytes are as documented. */
    @Test
    void integerGroupIsExactAndLaidOutAsDocumented() {
        float[] x = new float[64];
        for (int j = 0; j < 64; j++) x[j] = j % 16;
        try (Arena arena = Arena.ofConfined()) {
            GroupQuant4.Packed p = GroupQuant4.quantize(MemorySegment.ofArray(x), DType.F32, 0, arena, 64);
            assertEquals(36, p.data().byteSize());
            assertEquals(0x10, p.data().get(ValueLayout.JAVA_BYTE, 0) & 0xff); // q0 = 0 low, q1 = 1 high
            assertEquals((byte) 0xfe, p.data().get(ValueLayout.JAVA_BYTE, 7)); // q14 = 14 low, q15 = 15 high
            assertEquals(0, p.data().get(Codec.I16, 32)); // min 0.0
            assertEquals(0x3c00, p.data().get(Codec.I16, 34)); // scale 1.0
            assertArrayEquals(x, GroupQuant4.dequantize(p));
        }
    }

    /** A weight [out, in] grouped along out: groups are 64 rows of one column, each with its own range. */
    @Test
    void weightGroupsRunDownTheOutputChannel() {
        int out = 64, in = 3;
        float[] x = new float[out * in];
        for (int r = 0; r < out; r++) {
            x[r * in] = r % 2 == 0 ? -2 : 2;          // column 0: {-2, 2}: min -2, scale 4/15
            x[r * in + 1] = 5;                         // column 1: constant: scale 0, exact
            x[r * in + 2] = r < 32 ? 0 : 30;           // column 2: {0, 30}: scale 2, exact
        }
        try (Arena arena = Arena.ofConfined()) {
            GroupQuant4.Packed p = GroupQuant4.quantize(MemorySegment.ofArray(x), DType.F32, 0, arena, out, in);
            Gq4Layout l = p.layout();
            assertEquals(64 * 3 / 2 + 4 * 3, l.packedBytes());
            assertEquals(-2f, Halfs.f16ToFloat(p.data().get(Codec.I16, l.minsOffset())));
            assertEquals(0f, Halfs.f16ToFloat(p.data().get(Codec.I16, l.scalesOffset() + 2)));
            assertEquals(2f, Halfs.f16ToFloat(p.data().get(Codec.I16, l.scalesOffset() + 4)));
            float[] y = GroupQuant4.dequantize(p);
            for (int r = 0; r < out; r++) {
                assertEquals(x[r * in + 1], y[r * in + 1]);
                assertEquals(x[r * in + 2], y[r * in + 2]);
                assertEquals(x[r * in], y[r * in], 0.01); // 15 * fp16-up(4/15) - 2 = 2.0027
            }
        }
    }

    /** Every element within half its group's stored scale, for grouped dims that are and are not multiples of 64. */
    @Test
    void roundTripErrorIsAtMostHalfAScale() {
        long[][] shapes = {{300, 100}, {130, 7}, {7, 5, 56}, {3, 130, 6}, {2, 3, 70, 4}, {4, 2, 128}, {64}, {1}};
        int[] dims = {0, 0, 2, 1, 2, 2, 0, 0};
        Random rnd = new Random(7);
        for (int s = 0; s < shapes.length; s++) {
            Gq4Layout l = Gq4Layout.of(dims[s], shapes[s]);
            float[] x = new float[(int) l.elements()];
            for (int i = 0; i < x.length; i++) x[i] = (float) (rnd.nextGaussian() * (1 + i % 5)) + (i % 3);
            try (Arena arena = Arena.ofConfined()) {
                GroupQuant4.Packed p = GroupQuant4.quantize(MemorySegment.ofArray(x), DType.F32, dims[s], arena, shapes[s]);
                float[] y = GroupQuant4.dequantize(p);
                for (int e = 0; e < x.length; e++) {
                    float scale = scaleOf(p, e);
                    assertTrue(Math.abs(x[e] - y[e]) <= scale / 2 * (1 + 1e-5) + Math.ulp(x[e]),
                            l + " element " + e + ": " + x[e] + " -> " + y[e] + ", scale " + scale);
                    assertEquals(Float.floatToIntBits(referenceDequantize(p, e)), Float.floatToIntBits(y[e]), l + " element " + e);
                }
            }
        }
    }

    /** Padding: the 36 real elements of a second group set its range alone; the padded nibbles are zero. */
    @Test
    void paddingIsLeftOutOfTheRange() {
        float[] x = new float[100];
        for (int j = 0; j < 64; j++) x[j] = -100;
        for (int j = 64; j < 100; j++) x[j] = 1 + (j - 64) % 16 * 0.5f; // [1, 8.5]: min 1, scale 0.5
        try (Arena arena = Arena.ofConfined()) {
            GroupQuant4.Packed p = GroupQuant4.quantize(MemorySegment.ofArray(x), DType.F32, 0, arena, 100);
            Gq4Layout l = p.layout();
            assertEquals(128, l.padded());
            assertEquals(64 + 8, l.packedBytes());
            assertEquals(1f, Halfs.f16ToFloat(p.data().get(Codec.I16, l.minsOffset() + 2)));
            assertEquals(0.5f, Halfs.f16ToFloat(p.data().get(Codec.I16, l.scalesOffset() + 2)));
            for (int b = 50; b < 64; b++) assertEquals(0, p.data().get(ValueLayout.JAVA_BYTE, b), "padding byte " + b);
            assertArrayEquals(x, GroupQuant4.dequantize(p));
        }
    }

    /** bf16 in, bf16 out: the vectorised bf16 rows are the f32 rows rounded to nearest even, bit for bit. */
    @Test
    void bf16RowsAreTheF32RowsRounded() {
        int rows = 96, cols = 200;
        Random rnd = new Random(3);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(2L * rows * cols);
            for (int i = 0; i < rows * cols; i++) src.set(Codec.I16, 2L * i, Halfs.floatToBf16((float) rnd.nextGaussian()));
            for (int dim : new int[] {0, 1}) {
                GroupQuant4.Packed p = GroupQuant4.quantize(src, DType.BF16, dim, arena, rows, cols);
                float[] f = GroupQuant4.dequantize(p);
                MemorySegment b = arena.allocate(2L * rows * cols);
                GroupQuant4.dequantizeRows(p, 5, rows - 5, b, 0, DType.BF16);
                for (int i = 5 * cols; i < rows * cols; i++) {
                    assertEquals(Halfs.floatToBf16(f[i]), b.get(Codec.I16, 2L * (i - 5 * cols)), "element " + i + " of dim " + dim);
                }
            }
        }
    }

    @Test
    void badInputIsRejectedByName() {
        try (Arena arena = Arena.ofConfined()) {
            var e = assertThrows(IllegalArgumentException.class,
                    () -> GroupQuant4.quantize(MemorySegment.ofArray(new float[] {0, 1e6f}), DType.F32, 0, arena, 2));
            assertTrue(e.getMessage().contains("fp16 range"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> GroupQuant4.quantize(MemorySegment.ofArray(new float[] {Float.NaN}), DType.F32, 0, arena, 1));
            assertTrue(e.getMessage().contains("NaN"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> Gq4Layout.of(2, 3, 4));
        }
    }

    @Test
    void fp16DirectedRoundingBracketsTheValue() {
        Random rnd = new Random(11);
        for (int i = 0; i < 100_000; i++) {
            float v = (float) (rnd.nextGaussian() * Math.pow(10, rnd.nextInt(10) - 6));
            float lo = Float.float16ToFloat(Fp16Rounding.down(v)), hi = Float.float16ToFloat(Fp16Rounding.up(v));
            assertTrue(lo <= v && v <= hi, v + " in [" + lo + ", " + hi + "]");
            float nearest = Float.float16ToFloat(Float.floatToFloat16(v));
            assertTrue(nearest == lo || nearest == hi, v + ": the nearest fp16 is one of the two");
        }
        assertEquals(Float.float16ToFloat((short) 0x0001), Float.float16ToFloat(Fp16Rounding.up(1e-9f)));
        assertEquals(-Float.float16ToFloat((short) 0x0001), Float.float16ToFloat(Fp16Rounding.down(-1e-9f)));
    }

    /** The stored scale of element e's group. */
    private static float scaleOf(GroupQuant4.Packed p, long e) {
        Gq4Layout l = p.layout();
        long o = e / ((long) l.len() * l.inner()), rem = e % ((long) l.len() * l.inner()), j = rem / l.inner(), i = rem % l.inner();
        return Halfs.f16ToFloat(p.data().get(Codec.I16, o * l.recordBytes() + l.scalesOffset() + 2 * ((j / 64) * l.inner() + i)));
    }

    /** Element e decoded straight from the documented layout, scalar. */
    static float referenceDequantize(GroupQuant4.Packed p, long e) {
        Gq4Layout l = p.layout();
        long o = e / ((long) l.len() * l.inner()), rem = e % ((long) l.len() * l.inner()), j = rem / l.inner(), i = rem % l.inner();
        long rec = o * l.recordBytes(), pe = j * l.inner() + i, param = (j / 64) * l.inner() + i;
        int b = p.data().get(ValueLayout.JAVA_BYTE, rec + pe / 2) & 0xff;
        int q = pe % 2 == 0 ? b & 0xf : b >>> 4;
        float mn = Halfs.f16ToFloat(p.data().get(Codec.I16, rec + l.minsOffset() + 2 * param));
        float sc = Halfs.f16ToFloat(p.data().get(Codec.I16, rec + l.scalesOffset() + 2 * param));
        return Math.fma(q, sc, mn);
    }
}
