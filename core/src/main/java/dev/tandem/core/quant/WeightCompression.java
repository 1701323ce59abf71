package dev.tandem.core.quant;

import dev.tandem.core.model.LayerWeights;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.ModelWeights;
import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Weight compression as FlexGen applies it: every decoder layer's matrices (q, k, v, o, gate, up, down) to GQ4
 * grouped along the output channel ({@code groupDim = 0} of [out, in]); embeddings, the output head, norms and
 * biases stay as stored. Each group's range is chosen by least squares ({@link #DEFAULT_RANGE}) rather than
 * FlexGen's min / max: the same format, half the perplexity cost.
 *
 * <p>{@link #roundTrip} gives a model whose matrices are the 4-bit ones decompressed to bf16 (f32 for f32 models),
 * the numerics of the offload executor, which moves the 4-bit bytes and decompresses them on the GPU to bf16 (the
 * same bits). Backends then use their usual kernels: no 4-bit matmul is needed to measure what compression costs.
 */
public final class WeightCompression {
    private WeightCompression() {}

    /**
     * How weight groups choose their range unless told otherwise: least squares (the same format and kernels as
     * FlexGen's min / max, half the perplexity cost; BENCHMARKS.md has the figures), or what the system property
     * {@code tandem.weightRange} names (MIN_MAX: FlexGen's exact rounding, and a twentieth of the quantizing time,
     * for throughput runs on synthetic weights of large shapes). The offload executor uses it too.
     */
    public static final GroupQuant4.Range DEFAULT_RANGE = GroupQuant4.Range.valueOf(System.getProperty("tandem.weightRange", "LEAST_SQUARES"));

    /** One weight compressed, grouped along its output channel (rows), with {@link #DEFAULT_RANGE}. */
    public static GroupQuant4.Packed compress(Tensor t, Arena arena) { return compress(t, DEFAULT_RANGE, arena); }

    /** One weight compressed, grouped along its output channel (rows). */
    public static GroupQuant4.Packed compress(Tensor t, GroupQuant4.Range range, Arena arena) {
        MemorySegment src = t.data();
        DType type = t.dtype();
        if (type.isQuantized()) {
            // Already block-quantized (GGUF Q8_0 / Q4_0): decoded to f32 first.
            float[] f = new float[Math.toIntExact(t.elements())];
            Codec.decode(type, src, 0, f, 0, f.length);
            src = MemorySegment.ofArray(f);
            type = DType.F32;
        }
        return GroupQuant4.quantize(src, type, 0, range, arena, t.rows(), t.cols());
    }

    /** The compressed weight back as a tensor of {@code type} (f32 or bf16) named {@code name}, in {@code arena}. */
    public static Tensor decompress(GroupQuant4.Packed p, String name, DType type, Arena arena) {
        long[] shape = p.layout().shape();
        MemorySegment dst = arena.allocate(type.bytesFor(p.layout().elements()), 64);
        GroupQuant4.dequantizeRows(p, 0, Math.toIntExact(p.layout().rows()), dst, 0, type);
        return new Tensor(name, type, shape, dst);
    }

    /** The type a compressed weight of this type is decompressed to: bf16 for bf16 weights, f32 otherwise. */
    public static DType decompressedType(DType stored) { return stored == DType.BF16 ? DType.BF16 : DType.F32; }

    /** Every layer matrix compressed and decompressed (see the class comment); the rest, OPT's biases included, as it was. */
    public static ModelWeights roundTrip(ModelWeights w, GroupQuant4.Range range, Arena arena) {
        List<LayerWeights> layers = new ArrayList<>();
        for (LayerWeights l : w.layers()) {
            layers.add(new LayerWeights(l.attnNorm(), roundTrip(l.wq(), range, arena), roundTrip(l.wk(), range, arena),
                    roundTrip(l.wv(), range, arena), roundTrip(l.wo(), range, arena), l.bq(), l.bk(), l.bv(), l.ffnNorm(),
                    roundTrip(l.gate(), range, arena), roundTrip(l.up(), range, arena), roundTrip(l.down(), range, arena),
                    l.attnNormBias(), l.bo(), l.ffnNormBias(), l.bUp(), l.bDown()));
        }
        return w.withLayers(layers);
    }

    /** A model whose layer matrices went through GQ4 with {@link #DEFAULT_RANGE}; closing it frees those copies and closes the original. */
    public static Model roundTrip(Model m) { return roundTrip(m, DEFAULT_RANGE); }

    /** A model whose layer matrices went through GQ4; closing it frees those copies and closes the original. */
    public static Model roundTrip(Model m, GroupQuant4.Range range) {
        Arena arena = Arena.ofShared();
        try {
            ModelWeights w = roundTrip(m.weights(), range, arena);
            String how = range == GroupQuant4.Range.MIN_MAX ? "min / max" : "least-squares range";
            return new Model(m.config(), w, m.tokenizer(), m.format() + ", layer matrices through GQ4 (4-bit, group 64, " + how + ")", () -> {
                arena.close();
                m.close();
            });
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static Tensor roundTrip(Tensor t, GroupQuant4.Range range, Arena arena) {
        if (t == null) return null; // OPT has no gate
        try (Arena scratch = Arena.ofConfined()) {
            return decompress(compress(t, range, scratch), t.name(), decompressedType(t.dtype()), arena);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("compressing '" + t.name() + "': " + e.getMessage(), e);
        }
    }
}
