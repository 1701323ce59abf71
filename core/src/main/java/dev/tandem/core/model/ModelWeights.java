package dev.tandem.core.model;

import dev.tandem.core.tensor.Tensor;

import java.util.List;

/** All tensors of a model; output is the embedding table itself when embeddings are tied. */
public record ModelWeights(Tensor embedding, List<LayerWeights> layers, Tensor finalNorm, Tensor output) {
}
