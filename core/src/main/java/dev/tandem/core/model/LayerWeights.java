package dev.tandem.core.model;

import dev.tandem.core.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * One decoder layer's tensors as read from the file; what an architecture lacks is null.
 *
 * <p>Llama family: gate, up, down; biases only on q/k/v (Qwen2). OPT: gate is null, up / down are fc1 / fc2, and
 * every projection and norm has a bias (attnNormBias, bo, ffnNormBias, bUp, bDown). One record for both, rather than
 * one per architecture, so that code walking a model's layers (sizes, conversion, offloading) sees a single type; the
 * 12-argument constructor keeps the Llama call sites as they were.
 */
public record LayerWeights(
        Tensor attnNorm, Tensor wq, Tensor wk, Tensor wv, Tensor wo,
        Tensor bq, Tensor bk, Tensor bv,
        Tensor ffnNorm, Tensor gate, Tensor up, Tensor down,
        Tensor attnNormBias, Tensor bo, Tensor ffnNormBias, Tensor bUp, Tensor bDown) {

    /** A Llama-family layer (no OPT biases). */
    public LayerWeights(Tensor attnNorm, Tensor wq, Tensor wk, Tensor wv, Tensor wo, Tensor bq, Tensor bk, Tensor bv,
                        Tensor ffnNorm, Tensor gate, Tensor up, Tensor down) {
        this(attnNorm, wq, wk, wv, wo, bq, bk, bv, ffnNorm, gate, up, down, null, null, null, null, null);
    }

    /** An OPT layer: LayerNorms with biases, biased projections, fc1 / fc2 as up / down. */
    public static LayerWeights opt(Tensor attnNorm, Tensor attnNormBias, Tensor wq, Tensor bq, Tensor wk, Tensor bk, Tensor wv, Tensor bv,
                                   Tensor wo, Tensor bo, Tensor ffnNorm, Tensor ffnNormBias, Tensor fc1, Tensor b1, Tensor fc2, Tensor b2) {
        return new LayerWeights(attnNorm, wq, wk, wv, wo, bq, bk, bv, ffnNorm, null, fc1, fc2, attnNormBias, bo, ffnNormBias, b1, b2);
    }

    /** The matrices (the bulk of the bytes), in the order a forward pass reads them. */
    public List<Tensor> matrices() {
        return present(wq, wk, wv, wo, gate, up, down);
    }

    /** Every tensor the layer has: matrices, norms and biases. */
    public List<Tensor> tensors() {
        return present(attnNorm, attnNormBias, wq, bq, wk, bk, wv, bv, wo, bo, ffnNorm, ffnNormBias, gate, up, bUp, down, bDown);
    }

    private static List<Tensor> present(Tensor... ts) {
        List<Tensor> out = new ArrayList<>(ts.length);
        for (Tensor t : ts) if (t != null) out.add(t);
        return out;
    }
}
