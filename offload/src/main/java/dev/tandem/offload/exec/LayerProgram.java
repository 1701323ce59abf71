package dev.tandem.offload.exec;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.Rope;
import dev.tandem.core.backend.Weight;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.tensor.Tensor;

import java.util.List;

/**
 * One architecture's decoder, cut where an offloaded run needs to cut it: the weights of each layer as a list of
 * matrices (what the schedule streams) and of small tensors (always resident), and the layer's ops split around
 * attention, because attention may run elsewhere (the CPU, over a host-resident cache) with the cache somewhere else.
 */
public interface LayerProgram {
    ModelConfig config();

    /**
     * Layer l's matrices in the order {@link #beforeAttention} and {@link #afterAttention} index them. Stacked or synthetic
     * matrices are allocated in {@code arena}, which the caller closes once it has placed them.
     */
    List<Tensor> matrices(int layer, java.lang.foreign.Arena arena);

    /**
     * How many of {@link #matrices}'s leading entries belong to attention (the rest are the FFN): FlexGen places the
     * attention and the FFN of a layer separately, each by its own share of the policy.
     */
    int attentionMatrices();

    /** Row counts of the parts a matrix was stacked from (q, k, v for q|k|v), in order; one entry when not stacked. */
    int[] parts(int matrix, Tensor stacked);

    /** Layer l's norm gains and biases (in {@code arena} when made on the fly; the caller copies what it keeps). */
    List<Tensor> vectors(int layer, java.lang.foreign.Arena arena);

    /** Tensors outside the layers (embeddings, final norm, output head), kept resident; index order is the program's. */
    List<Tensor> globals();

    /** How many of {@link #globals}'s leading entries {@link #embed} uses; {@link #logits} uses the rest. */
    int embeddingGlobals();

    /** RoPE tables, or null when positions enter through a learned embedding instead. */
    Rope rope();

    /** Columns of the q|k|v activation: q at 0, k at qDim, v at qDim + kvDim. */
    default int qkvCols() { return config().qDim() + 2 * config().kvDim(); }

    /** Widest FFN activation a layer needs. */
    int ffnCols();

    /** x = the embeddings of the tokens at their positions. */
    void embed(Backend b, Weight[] globals, int[] tokens, int[] positions, Activation x);

    /**
     * From the residual stream x, the layer's q, k and v (before RoPE) into {@code qkv}: one stacked activation whose
     * column views are q, k and v (a backend with column views), or three activations {@code q, k, v} (qkv null).
     */
    void beforeAttention(Backend b, Weight[] m, Weight[] v, Activation x, Activation xb, Activation qkv, Activation q, Activation k,
                         Activation vOut);

    /** x += the layer's output given the attention result {@code att}; {@code proj} and {@code ffn} are scratch. */
    void afterAttention(Backend b, Weight[] m, Weight[] v, Activation att, Activation x, Activation xb, Activation proj, Activation ffn,
                        Activation ffn2);

    /** logits of the rows of x (already gathered): the final norm and the output head. */
    void logits(Backend b, Weight[] globals, Activation x, Activation norm, Activation logits);
}
