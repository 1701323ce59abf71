package dev.tandem.core.format.gguf;

import dev.tandem.core.backend.Rope;
import dev.tandem.core.format.WeightBinder;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.tensor.DType;

import java.io.IOException;
import java.nio.file.Path;
import dev.tandem.core.model.LayerWeights;
import dev.tandem.core.model.ModelWeights;
import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.Tensor;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Writes a Llama-family model as a GGUF file that llama.cpp reads: its metadata keys, tensor names and
 * Q/K row order (architecture "llama" pairs RoPE dimensions as (2i, 2i+1), so Hugging Face's rotate-half
 * rows are permuted on the way out). Norms stay F32; a matrix whose rows are not whole quant blocks falls
 * back to F32, as llama.cpp's quantizer does.
 */
public final class GgufModelWriter {
    private GgufModelWriter() {}

    /** Where the values of one logical tensor come from (rows in Tandem's [out, in] order). */
    public interface Source {
        /** Fills dst[0, count * cols) with rows [first, first + count) of the named tensor (GGUF name). */
        void rows(String ggufName, long first, int count, int cols, float[] dst);
    }

    /** Reads rows of a loaded model's tensors (any stored type), addressed by their GGUF names. */
    public static Source sourceOf(ModelWeights weights) {
        Map<String, Tensor> byName = new HashMap<>();
        WeightBinder.Names n = WeightBinder.GGUF;
        byName.put(n.embedding(), weights.embedding());
        byName.put(n.finalNorm(), weights.finalNorm());
        byName.put(n.output(), weights.output());
        for (int l = 0; l < weights.layers().size(); l++) {
            LayerWeights lw = weights.layers().get(l);
            Tensor[] ts = {lw.attnNorm(), lw.wq(), lw.wk(), lw.wv(), lw.wo(), lw.bq(), lw.bk(), lw.bv(), lw.ffnNorm(), lw.gate(), lw.up(), lw.down()};
            WeightBinder.Part[] parts = WeightBinder.Part.values();
            for (int i = 0; i < ts.length; i++) if (ts[i] != null) byName.put(n.layer(l, parts[i]), ts[i]);
        }
        return (name, first, count, cols, dst) -> {
            Tensor t = byName.get(name);
            if (t == null) throw new IllegalArgumentException("no tensor " + name);
            Codec.decode(t.dtype(), t.data(), first * cols, dst, 0, count * cols);
        };
    }

    /** GGUF's general.file_type for a model whose matrices are of this type. */
    static int fileType(DType t) {
        return switch (t) {
            case F32 -> 0;
            case F16 -> 1;
            case Q4_0 -> 2;
            case Q8_0 -> 7;
            case BF16 -> 32;
        };
    }

    public static void write(Path out, ModelConfig c, DType type, GgufVocab vocab, Source source, String name) throws IOException {
        if (c.isOpt()) {
            throw new IllegalArgumentException(out + ": GGUF output is written for the Llama family only; this model is OPT (write the Hugging Face layout)");
        }
        String arch = c.architecture().equals("qwen2") ? "qwen2" : "llama";
        // llama.cpp's qwen2 uses rotate-half RoPE; its llama uses interleaved pairs.
        Rope.Style target = arch.equals("qwen2") ? Rope.Style.HALF : Rope.Style.INTERLEAVED;
        GgufWriter w = new GgufWriter();
        w.putString("general.architecture", arch);
        w.putString("general.name", name);
        w.putUInt32("general.file_type", fileType(type));
        w.putUInt32("general.quantization_version", 2);
        w.putUInt32(arch + ".context_length", c.contextLength());
        w.putUInt32(arch + ".embedding_length", c.dim());
        w.putUInt32(arch + ".block_count", c.layers());
        w.putUInt32(arch + ".feed_forward_length", c.hiddenDim());
        w.putUInt32(arch + ".rope.dimension_count", c.headDim());
        w.putUInt32(arch + ".attention.head_count", c.heads());
        w.putUInt32(arch + ".attention.head_count_kv", c.kvHeads());
        w.putUInt32(arch + ".attention.key_length", c.headDim());
        w.putUInt32(arch + ".attention.value_length", c.headDim());
        w.putFloat32(arch + ".attention.layer_norm_rms_epsilon", c.normEps());
        w.putFloat32(arch + ".rope.freq_base", (float) c.ropeTheta());
        w.putUInt32(arch + ".vocab_size", c.vocabSize());
        w.putString("tokenizer.ggml.model", vocab.model());
        if (vocab.pre() != null) w.putString("tokenizer.ggml.pre", vocab.pre());
        w.putStringArray("tokenizer.ggml.tokens", Arrays.asList(vocab.tokens()));
        if (vocab.scores() != null) w.putFloat32Array("tokenizer.ggml.scores", vocab.scores());
        w.putInt32Array("tokenizer.ggml.token_type", vocab.types());
        if (vocab.merges() != null) w.putStringArray("tokenizer.ggml.merges", Arrays.asList(vocab.merges()));
        if (vocab.bos() >= 0) w.putUInt32("tokenizer.ggml.bos_token_id", vocab.bos());
        if (vocab.eos() >= 0) w.putUInt32("tokenizer.ggml.eos_token_id", vocab.eos());
        w.putBool("tokenizer.ggml.add_bos_token", vocab.addBos());

        // Llama 3 frequency scaling travels as per-frequency divisors, the way llama.cpp reads it.
        float[] base = Rope.invFreq(c.headDim(), c.ropeTheta());
        if (!Arrays.equals(base, c.ropeInvFreq())) {
            float[] factors = new float[base.length];
            for (int i = 0; i < base.length; i++) factors[i] = base[i] / c.ropeInvFreq()[i];
            w.addTensor("rope_freqs.weight", DType.F32, new long[] {factors.length}, factors);
        }

        WeightBinder.Names n = WeightBinder.GGUF;
        matrix(w, source, n.embedding(), type, c.vocabSize(), c.dim(), null);
        for (int l = 0; l < c.layers(); l++) {
            vector(w, source, n.layer(l, WeightBinder.Part.ATTN_NORM), c.dim());
            Rope.Style from = c.ropeStyle();
            int[] qPerm = from != target ? halfToInterleaved(c.heads(), c.headDim()) : null;
            int[] kPerm = from != target ? halfToInterleaved(c.kvHeads(), c.headDim()) : null;
            if (from != target && target == Rope.Style.HALF) {
                qPerm = interleavedToHalf(c.heads(), c.headDim());
                kPerm = interleavedToHalf(c.kvHeads(), c.headDim());
            }
            matrix(w, source, n.layer(l, WeightBinder.Part.WQ), type, c.qDim(), c.dim(), qPerm);
            matrix(w, source, n.layer(l, WeightBinder.Part.WK), type, c.kvDim(), c.dim(), kPerm);
            matrix(w, source, n.layer(l, WeightBinder.Part.WV), type, c.kvDim(), c.dim(), null);
            if (c.qkvBias()) {
                vectorPermuted(w, source, n.layer(l, WeightBinder.Part.BQ), c.qDim(), qPerm);
                vectorPermuted(w, source, n.layer(l, WeightBinder.Part.BK), c.kvDim(), kPerm);
                vector(w, source, n.layer(l, WeightBinder.Part.BV), c.kvDim());
            }
            matrix(w, source, n.layer(l, WeightBinder.Part.WO), type, c.dim(), c.qDim(), null);
            vector(w, source, n.layer(l, WeightBinder.Part.FFN_NORM), c.dim());
            matrix(w, source, n.layer(l, WeightBinder.Part.GATE), type, c.hiddenDim(), c.dim(), null);
            matrix(w, source, n.layer(l, WeightBinder.Part.UP), type, c.hiddenDim(), c.dim(), null);
            matrix(w, source, n.layer(l, WeightBinder.Part.DOWN), type, c.dim(), c.hiddenDim(), null);
        }
        vector(w, source, n.finalNorm(), c.dim());
        if (!c.tiedEmbeddings()) matrix(w, source, n.output(), type, c.vocabSize(), c.dim(), null);
        w.write(out);
    }

    private static void matrix(GgufWriter w, Source src, String name, DType type, int rows, int cols, int[] perm) {
        DType t = cols % type.blockSize() == 0 ? type : DType.F32;
        if (perm == null) {
            w.addTensor(name, t, new long[] {rows, cols}, (first, count, dst) -> src.rows(name, first, count, cols, dst));
        } else {
            float[] one = new float[cols];
            w.addTensor(name, t, new long[] {rows, cols}, (first, count, dst) -> {
                for (int i = 0; i < count; i++) {
                    src.rows(name, perm[(int) first + i], 1, cols, one);
                    System.arraycopy(one, 0, dst, i * cols, cols);
                }
            });
        }
    }

    private static void vector(GgufWriter w, Source src, String name, int len) {
        w.addTensor(name, DType.F32, new long[] {len}, (first, count, dst) -> src.rows(name, 0, 1, len, dst));
    }

    private static void vectorPermuted(GgufWriter w, Source src, String name, int len, int[] perm) {
        if (perm == null) {
            vector(w, src, name, len);
            return;
        }
        w.addTensor(name, DType.F32, new long[] {len}, (first, count, dst) -> {
            float[] v = new float[len];
            src.rows(name, 0, 1, len, v);
            for (int i = 0; i < len; i++) dst[i] = v[perm[i]];
        });
    }

    /** Output row 2i (2i+1) of each head takes input row i (i + d/2): rotate-half order to interleaved pairs. */
    static int[] halfToInterleaved(int heads, int headDim) {
        int[] p = new int[heads * headDim];
        int half = headDim / 2;
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < half; i++) {
                p[h * headDim + 2 * i] = h * headDim + i;
                p[h * headDim + 2 * i + 1] = h * headDim + i + half;
            }
        }
        return p;
    }

    static int[] interleavedToHalf(int heads, int headDim) {
        int[] fwd = halfToInterleaved(heads, headDim);
        int[] inv = new int[fwd.length];
        for (int i = 0; i < fwd.length; i++) inv[fwd[i]] = i;
        return inv;
    }
}
