package dev.tandem.core.model;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvStorage;

import java.util.function.IntConsumer;

/**
 * A decoder-only forward pass over the {@link Backend} seam and the paged KV cache: what the engine, the generator and
 * the CLI run, whatever the architecture ({@link LlamaModel} for the Llama family, {@link OptModel} for OPT). One call
 * runs a whole step of mixed prefill chunks and decode tokens.
 */
public interface DecoderModel {

    /** The forward pass for {@code config.architecture()}, with weights uploaded to {@code backend}. */
    static DecoderModel create(ModelConfig config, ModelWeights weights, Backend backend, int maxTokens, int maxLogitRows) {
        return config.isOpt() ? new OptModel(config, weights, backend, maxTokens, maxLogitRows)
                : new LlamaModel(config, weights, backend, maxTokens, maxLogitRows);
    }

    ModelConfig config();

    Backend backend();

    /** Most tokens one step may carry (prefill chunk plus decodes). */
    int maxTokens();

    /**
     * Runs one step: writes the batch's keys and values into {@code kv} and returns the logits of
     * {@code batch.logitRows()} (a view valid until the next call).
     */
    default Activation forward(StepBatch batch, KvStorage kv) {
        return forward(batch, kv, null);
    }

    /**
     * As {@link #forward(StepBatch, KvStorage)}, calling {@code afterKvWrite} (if not null) with each layer's index as
     * soon as that layer's keys and values of the batch are in {@code kv}: a Splitwise prompt worker starts sending a
     * layer's KV blocks from there while the following layers compute.
     */
    Activation forward(StepBatch batch, KvStorage kv, IntConsumer afterKvWrite);
}
