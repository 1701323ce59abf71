package dev.tandem.core.model;

import dev.tandem.core.tensor.Tensor;

/** One decoder layer's tensors as read from the file; the biases are null unless the architecture has them. */
public record LayerWeights(
        Tensor attnNorm, Tensor wq, Tensor wk, Tensor wv, Tensor wo,
        Tensor bq, Tensor bk, Tensor bv,
        Tensor ffnNorm, Tensor gate, Tensor up, Tensor down) {
}
