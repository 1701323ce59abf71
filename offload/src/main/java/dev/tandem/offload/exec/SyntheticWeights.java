package dev.tandem.offload.exec;

import dev.tandem.core.model.LayerWeights;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.ModelWeights;
import dev.tandem.core.tensor.Codec;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Weights for throughput runs of shapes whose files nobody has here (FlexGen's "dummy weights"): bf16 values of
 * about N(0, 0.02) from a 4 MiB random tile repeated at a per-tensor shift, norms at 1. A layer's matrices are made in the
 * caller's arena when the run places that layer, so a 60 GB model never exists twice in host memory.
 */
public final class SyntheticWeights {
    private static final int TILE = 2 << 20; // bf16 values
    private final ModelConfig config;
    private final MemorySegment tile;
    private final Arena globalArena = Arena.ofShared();
    private final Tensor embedding, finalNorm, output, positions, finalNormBias;

    public SyntheticWeights(ModelConfig config, long seed) {
        this.config = config;
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[TILE];
        for (int i = 0; i < TILE; i++) v[i] = (float) (r.nextGaussian() * 0.02);
        tile = globalArena.allocate(2L * TILE, 64);
        Codec.encode(DType.BF16, v, 0, TILE, tile, 0);
        embedding = matrix(globalArena, "embed_tokens", config.vocabSize(), config.dim(), 1);
        finalNorm = ones(globalArena, "norm", config.dim());
        output = config.tiedEmbeddings() ? embedding : matrix(globalArena, "lm_head", config.vocabSize(), config.dim(), 2);
        positions = config.isOpt()
                ? matrix(globalArena, "embed_positions", config.contextLength() + ModelConfig.OPT_POSITION_OFFSET, config.dim(), 3) : null;
        finalNormBias = config.isOpt() ? zeros(globalArena, "final_layer_norm.bias", config.dim()) : null;
    }

    public ModelConfig config() { return config; }

    /** The matrices outside the layers, allocated once. */
    public ModelWeights globals() { return new ModelWeights(embedding, List.of(), finalNorm, output, positions, finalNormBias); }

    /** Layer l's tensors, in {@code arena}. */
    public LayerWeights layer(int l, Arena arena) {
        int d = config.dim(), q = config.qDim(), kv = config.kvDim(), h = config.hiddenDim();
        long s = 16L * l;
        String p = "layers." + l + ".";
        if (config.isOpt()) {
            return LayerWeights.opt(ones(arena, p + "self_attn_layer_norm", d), zeros(arena, p + "self_attn_layer_norm.bias", d),
                    matrix(arena, p + "q_proj", q, d, s + 3), zeros(arena, p + "q_proj.bias", q),
                    matrix(arena, p + "k_proj", kv, d, s + 4), zeros(arena, p + "k_proj.bias", kv),
                    matrix(arena, p + "v_proj", kv, d, s + 5), zeros(arena, p + "v_proj.bias", kv),
                    matrix(arena, p + "out_proj", d, q, s + 6), zeros(arena, p + "out_proj.bias", d),
                    ones(arena, p + "final_layer_norm", d), zeros(arena, p + "final_layer_norm.bias", d),
                    matrix(arena, p + "fc1", h, d, s + 7), zeros(arena, p + "fc1.bias", h),
                    matrix(arena, p + "fc2", d, h, s + 8), zeros(arena, p + "fc2.bias", d));
        }
        return new LayerWeights(ones(arena, p + "input_layernorm", d),
                matrix(arena, p + "q_proj", q, d, s + 3), matrix(arena, p + "k_proj", kv, d, s + 4), matrix(arena, p + "v_proj", kv, d, s + 5),
                matrix(arena, p + "o_proj", d, q, s + 6), null, null, null, ones(arena, p + "post_attention_layernorm", d),
                matrix(arena, p + "gate_proj", h, d, s + 7), matrix(arena, p + "up_proj", h, d, s + 8), matrix(arena, p + "down_proj", d, h, s + 9));
    }

    Tensor matrix(Arena arena, String name, int rows, int cols, long salt) {
        long n = (long) rows * cols;
        MemorySegment m = arena.allocate(2 * n, 64);
        long shift = (salt * 7919) % TILE;
        for (long at = 0; at < n; ) {
            long from = (at + shift) % TILE, count = Math.min(n - at, TILE - from);
            MemorySegment.copy(tile, 2 * from, m, 2 * at, 2 * count);
            at += count;
        }
        return new Tensor(name, DType.BF16, new long[] {rows, cols}, m);
    }

    static Tensor zeros(Arena arena, String name, int n) {
        return new Tensor(name, DType.F32, new long[] {n}, arena.allocate(4L * n, 64));
    }

    static Tensor ones(Arena arena, String name, int n) {
        MemorySegment m = arena.allocate(4L * n, 64);
        for (int i = 0; i < n; i++) m.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, i, 1f);
        return new Tensor(name, DType.F32, new long[] {n}, m);
    }
}
