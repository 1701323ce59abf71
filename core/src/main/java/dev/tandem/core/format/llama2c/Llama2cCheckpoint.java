package dev.tandem.core.format.llama2c;

import dev.tandem.core.backend.Rope;
import dev.tandem.core.format.MappedFile;
import dev.tandem.core.format.ModelFormatException;
import dev.tandem.core.model.LayerWeights;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.ModelWeights;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * llama2.c checkpoints: the legacy (v0) fp32 layout run.c reads, and export.py's version 1 (fp32 with a
 * 256-byte "ak42" header). Version 2 (int8, llama2.c's own group size) is refused with a clear message.
 */
public final class Llama2cCheckpoint {
    public static final int MAGIC = 0x616b3432; // "ak42"

    private Llama2cCheckpoint() {}

    public record Loaded(ModelConfig config, ModelWeights weights) {}

    /** Whether the file's header is a plausible llama2.c header (v0 sizes must match the file exactly). */
    public static boolean looksLike(MappedFile f) {
        if (f.size() < 28) return false;
        if (f.i32(0, "magic") == MAGIC) return true;
        try {
            return v0Size(header(f, 0)) == f.size();
        } catch (ModelFormatException | ArithmeticException e) {
            return false;
        }
    }

    private static int[] header(MappedFile f, long off) {
        int[] h = new int[7];
        for (int i = 0; i < 7; i++) h[i] = f.i32(off + 4L * i, "header");
        return h;
    }

    private static long v0Size(int[] h) {
        int dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kvHeads = h[4], vocab = Math.abs(h[5]), seq = h[6];
        if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocab <= 0 || seq <= 0
                || dim % heads != 0 || heads % kvHeads != 0) {
            return -1;
        }
        long kvDim = (long) dim / heads * kvHeads;
        long params = (long) vocab * dim + (long) layers * (2L * dim + 2L * dim * dim + 2L * kvDim * dim + 3L * dim * hidden)
                + dim + (long) seq * (dim / heads);
        if (h[5] < 0) params += (long) vocab * dim;
        return 28 + 4 * params;
    }

    public static Loaded load(MappedFile f) {
        boolean versioned = f.i32(0, "magic") == MAGIC;
        int version = versioned ? f.i32(4, "version") : 0;
        if (versioned && version != 1) {
            throw f.error("llama2.c checkpoint version " + version + " is not supported (supported: legacy v0 and version 1 fp32;"
                    + " version 2 is llama2.c's int8 export: convert the fp32 checkpoint instead)");
        }
        int[] h = header(f, versioned ? 8 : 0);
        int dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kvHeads = h[4], seq = h[6];
        boolean shared = versioned ? f.segment().get(java.lang.foreign.ValueLayout.JAVA_BYTE, 36) != 0 : h[5] > 0;
        int vocab = Math.abs(h[5]);
        if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocab <= 0 || seq <= 0) {
            throw f.error("header has non-positive sizes: dim " + dim + ", hidden_dim " + hidden + ", n_layers " + layers
                    + ", n_heads " + heads + ", n_kv_heads " + kvHeads + ", vocab_size " + h[5] + ", seq_len " + seq);
        }
        if (dim % heads != 0 || heads % kvHeads != 0) {
            throw f.error("header: dim " + dim + " must be a multiple of n_heads " + heads + ", and n_heads of n_kv_heads " + kvHeads);
        }
        int headDim = dim / heads;
        int kvDim = headDim * kvHeads;
        if (!versioned && v0Size(h) != f.size()) {
            throw f.error("the header (dim " + dim + ", hidden_dim " + hidden + ", n_layers " + layers + ", vocab " + h[5]
                    + ", seq_len " + seq + ") implies " + v0Size(h) + " bytes, the file has " + f.size() + " (truncated or not a llama2.c checkpoint)");
        }
        Reader r = new Reader(f, versioned ? 256 : 28);
        Tensor embedding = null;
        Tensor[] attnNorm, ffnNorm, wq, wk, wv, wo, w1, w2, w3;
        Tensor finalNorm;
        if (!versioned) {
            embedding = r.next("token_embedding_table", vocab, dim);
            attnNorm = r.perLayer("rms_att_weight", layers, dim);
            wq = r.perLayer("wq", layers, dim, dim);
            wk = r.perLayer("wk", layers, kvDim, dim);
            wv = r.perLayer("wv", layers, kvDim, dim);
            wo = r.perLayer("wo", layers, dim, dim);
            ffnNorm = r.perLayer("rms_ffn_weight", layers, dim);
            w1 = r.perLayer("w1", layers, hidden, dim);
            w2 = r.perLayer("w2", layers, dim, hidden);
            w3 = r.perLayer("w3", layers, hidden, dim);
            finalNorm = r.next("rms_final_weight", dim);
            r.skip("freq_cis", 2L * seq * (headDim / 2));
        } else {
            attnNorm = r.perLayer("rms_att_weight", layers, dim);
            ffnNorm = r.perLayer("rms_ffn_weight", layers, dim);
            finalNorm = r.next("rms_final_weight", dim);
            embedding = r.next("token_embedding_table", vocab, dim);
            wq = r.perLayer("wq", layers, dim, dim);
            wk = r.perLayer("wk", layers, kvDim, dim);
            wv = r.perLayer("wv", layers, kvDim, dim);
            wo = r.perLayer("wo", layers, dim, dim);
            w1 = r.perLayer("w1", layers, hidden, dim);
            w2 = r.perLayer("w2", layers, dim, hidden);
            w3 = r.perLayer("w3", layers, hidden, dim);
        }
        Tensor output = shared ? embedding : r.next("wcls", vocab, dim);
        List<LayerWeights> lw = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            lw.add(new LayerWeights(attnNorm[l], wq[l], wk[l], wv[l], wo[l], null, null, null, ffnNorm[l], w1[l], w3[l], w2[l]));
        }
        // run.c: rotate adjacent pairs with frequency 1 / 10000^(2i / head_size), rmsnorm eps 1e-5.
        ModelConfig config = new ModelConfig("llama", dim, hidden, layers, heads, kvHeads, headDim, vocab, seq, 1e-5f,
                Rope.Style.INTERLEAVED, 10000.0, Rope.invFreq(headDim, 10000.0), shared, false, 0, 1, 2);
        return new Loaded(config, new ModelWeights(embedding, lw, finalNorm, output));
    }

    /** Reads consecutive fp32 tensors, each a bounds-checked slice. */
    private static final class Reader {
        private final MappedFile f;
        private long off;

        Reader(MappedFile f, long start) {
            this.f = f;
            this.off = start;
        }

        Tensor next(String name, long... shape) {
            long bytes = 4 * Tensor.elements(shape);
            Tensor t = new Tensor(name, DType.F32, shape, f.slice(off, bytes, "tensor '" + name + "'"));
            off += bytes;
            return t;
        }

        Tensor[] perLayer(String name, int layers, long... shape) {
            Tensor[] t = new Tensor[layers];
            for (int l = 0; l < layers; l++) t[l] = next(name + "[" + l + "]", shape);
            return t;
        }

        void skip(String what, long floats) {
            f.require(off, 4 * floats, what);
            off += 4 * floats;
        }
    }
}
