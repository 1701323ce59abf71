package dev.tandem.core.model;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.AttentionBatch;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.Weight;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * The OPT forward pass (Zhang et al. 2022; Hugging Face OPTForCausalLM with do_layer_norm_before, i.e. every size but
 * 350m), written once over the {@link Backend} seam with the same paged-KV step contract as {@link LlamaModel}: token
 * embedding plus a learned position embedding (row position + 2), the {@link OptLayer}s (multi-head attention scaled by
 * head_dim^-0.5, no RoPE; ReLU FFN; pre-LayerNorm), a final LayerNorm and the output head tied to the token embedding.
 *
 * <p>Steps always run their ops directly (no CUDA-graph replay yet): OPT serves FlexGen-style batch jobs, where steps
 * are large and launch overhead is small next to them.
 */
public final class OptModel implements DecoderModel {
    private final ModelConfig config;
    private final Backend backend;
    private final Weight embedding, positions, finalNorm, finalNormBias, output;
    private final List<OptLayer> layers = new ArrayList<>();
    private final int maxTokens;
    private final float attentionScale;
    // Scratch sized for the largest step; each step uses views of its own row count.
    private final OptLayer.Scratch scratch;
    private final Activation x, lastRows, lastNorm, logits;

    /**
     * @param maxTokens most tokens one step may carry (prefill chunk plus decodes)
     * @param maxLogitRows most rows one step may ask logits for
     */
    public OptModel(ModelConfig config, ModelWeights weights, Backend backend, int maxTokens, int maxLogitRows) {
        if (!config.isOpt()) throw new IllegalArgumentException("OptModel runs OPT, not " + config.architecture());
        if (weights.positions() == null || weights.finalNormBias() == null) {
            throw new IllegalArgumentException("OPT weights need the learned position table and the final LayerNorm's bias");
        }
        this.config = config;
        this.backend = backend;
        this.maxTokens = maxTokens;
        this.attentionScale = (float) (1.0 / Math.sqrt(config.headDim()));
        embedding = backend.upload(weights.embedding());
        positions = backend.upload(weights.positions());
        finalNorm = backend.upload(weights.finalNorm());
        finalNormBias = backend.upload(weights.finalNormBias());
        output = weights.output() == weights.embedding() ? embedding : backend.upload(weights.output());
        for (LayerWeights l : weights.layers()) layers.add(new OptLayer(backend, config, l));
        scratch = new OptLayer.Scratch(backend, config, maxTokens, !layers.isEmpty() && layers.get(0).weights().stacked());
        x = backend.allocate(maxTokens, config.dim());
        lastRows = backend.allocate(maxLogitRows, config.dim());
        lastNorm = backend.allocate(maxLogitRows, config.dim());
        logits = backend.allocate(maxLogitRows, config.vocabSize());
    }

    @Override
    public ModelConfig config() { return config; }

    @Override
    public Backend backend() { return backend; }

    @Override
    public int maxTokens() { return maxTokens; }

    @Override
    public Activation forward(StepBatch batch, KvStorage kv, IntConsumer afterKvWrite) {
        batch.check(maxTokens, config.vocabSize());
        for (int p : batch.positions()) {
            if (p < 0 || p >= config.contextLength()) {
                throw new IllegalArgumentException("position " + p + " outside OPT's " + config.contextLength() + " learned positions");
            }
        }
        int r = batch.logitRows().length;
        if (r > logits.rows()) throw new IllegalArgumentException(r + " logit rows; this model was set up for " + logits.rows());
        AttentionBatch ab = new AttentionBatch(batch.seqs(), config.heads(), config.kvHeads(), config.headDim(), attentionScale);
        backend.beginStep(batch.tokens(), batch.positions(), batch.slots(), ab, batch.blockTableStride(kv.layout().blockSize(), config.contextLength()));
        Activation x = this.x.rows(batch.size());
        backend.embed(embedding, batch.tokens(), x);
        backend.addPositionEmbedding(x, positions, batch.positions(), ModelConfig.OPT_POSITION_OFFSET);
        for (int l = 0; l < layers.size(); l++) layers.get(l).forward(x, scratch, batch, ab, kv, l, afterKvWrite);
        if (r == 0) return logits.rows(0); // prefill chunks that sample nothing: no logits to compute
        Activation last = lastRows.rows(r), norm = lastNorm.rows(r), out = logits.rows(r);
        backend.gatherRows(x, batch.logitRows(), last);
        backend.layerNorm(last, finalNorm, finalNormBias, config.normEps(), norm);
        backend.matmul(norm, output, out);
        return out;
    }
}
