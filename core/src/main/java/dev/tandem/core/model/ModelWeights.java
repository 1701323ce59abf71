package dev.tandem.core.model;

import dev.tandem.core.tensor.Tensor;

import java.util.List;

/**
 * All tensors of a model; output is the embedding table itself when embeddings are tied.
 *
 * @param positions     OPT's learned position table ([contextLength + 2, dim]); null for RoPE models
 * @param finalNormBias OPT's final LayerNorm bias; null for RMSNorm models
 */
public record ModelWeights(Tensor embedding, List<LayerWeights> layers, Tensor finalNorm, Tensor output,
                           Tensor positions, Tensor finalNormBias) {

    /** A Llama-family model (no position table, no norm biases): the form every Llama loader builds. */
    public ModelWeights(Tensor embedding, List<LayerWeights> layers, Tensor finalNorm, Tensor output) {
        this(embedding, layers, finalNorm, output, null, null);
    }

    /** These weights with other layers (the rest, OPT's position table and final bias included, as they are). */
    public ModelWeights withLayers(List<LayerWeights> newLayers) {
        return new ModelWeights(embedding, newLayers, finalNorm, output, positions, finalNormBias);
    }
}
