package dev.tandem.core.model;

import dev.tandem.core.tokenizer.Tokenizer;

/**
 * A loaded model: its configuration, weights (slices of memory-mapped files), tokenizer, and what owns the
 * mappings. Closing it unmaps the files; weights must not be used after that.
 *
 * @param format where it came from, e.g. "safetensors (bf16)", "GGUF", "llama2.c v0"
 */
public record Model(ModelConfig config, ModelWeights weights, Tokenizer tokenizer, String format, AutoCloseable owner)
        implements AutoCloseable {
    @Override
    public void close() {
        try {
            owner.close();
        } catch (Exception e) {
            throw new IllegalStateException("closing model: " + e.getMessage(), e);
        }
    }
}
