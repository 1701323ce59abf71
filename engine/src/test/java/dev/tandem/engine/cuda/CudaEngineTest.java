package dev.tandem.engine.cuda;

import dev.tandem.core.Golden;
import dev.tandem.core.TestModels;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.cuda.CudaDriver;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineConfig;
import dev.tandem.engine.FinishReason;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.TokenEvent;
import dev.tandem.engine.TokenListener;
import dev.tandem.engine.spec.SpeculativeConfig;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The serving engine, unchanged, on the CUDA backend: twelve concurrent greedy requests (continuous batching, chunked
 * prefill, decode steps replayed as CUDA graphs, argmax on the GPU) each return HF transformers' greedy ids.
 */
class CudaEngineTest {
    @Test
    void concurrentGreedyRequestsReturnTransformersIds() throws Exception {
        String why = CudaDriver.unavailableReason();
        if (why != null) System.err.println("CudaEngineTest skipped: no CUDA GPU here (" + why + "); it runs on the GPU machine");
        assumeTrue(why == null, "no CUDA GPU here (" + why + ")");
        List<Golden.Prompt> prompts = Golden.prompts();
        try (Model model = ModelLoader.load(TestModels.model("gutenberg-stories-llama-25m"), null);
             CudaBackend backend = new CudaBackend(0, CudaBackend.Precision.F32);
             Engine engine = new Engine(model, backend, EngineConfig.DEFAULT.withMaxNumBatchedTokens(64))) {
            List<CompletableFuture<int[]>> results = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                Golden.Prompt p = prompts.get(i % prompts.size());
                results.add(submit(engine, new GenerationRequest(p.ids(), p.targetIds().length, SamplingParams.GREEDY, true, -1)));
            }
            for (int i = 0; i < results.size(); i++) {
                Golden.Prompt p = prompts.get(i % prompts.size());
                assertArrayEquals(p.targetIds(), results.get(i).get(120, TimeUnit.SECONDS), "request " + i + " ('" + p.text() + "')");
            }
        }
    }

    /**
     * A prompt longer than the step's token budget, alone: its first steps are prefill chunks that sample nothing, so
     * the model is asked for the logits of no row (the GPU launch with an empty grid that failed long prompts on a
     * served 8B model with "cuLaunchKernel failed: invalid argument").
     */
    @Test
    void promptChunksThatSampleNothingAlone() throws Exception {
        String why = CudaDriver.unavailableReason();
        assumeTrue(why == null, "no CUDA GPU here (" + why + ")");
        try (Model model = ModelLoader.load(TestModels.model("gutenberg-stories-llama-25m"), null);
             CudaBackend backend = new CudaBackend(0, CudaBackend.Precision.F32);
             Engine engine = new Engine(model, backend, EngineConfig.DEFAULT.withMaxNumBatchedTokens(4))) {
            for (Golden.Prompt p : Golden.prompts()) {
                int[] got = submit(engine, new GenerationRequest(p.ids(), p.targetIds().length, SamplingParams.GREEDY, true, -1))
                        .get(120, TimeUnit.SECONDS);
                assertArrayEquals(p.targetIds(), got, "'" + p.text() + "' (" + p.ids().length + " prompt tokens) in chunks of 4");
            }
        }
    }

    /**
     * Speculation on the GPU (n-gram drafts of 4; draft-model drafts of 3 with the 3M draft): verification steps of
     * k + 1 tokens per sequence are recorded and replayed as CUDA graphs like decode steps, and the greedy output is
     * still HF's.
     */
    @Test
    void speculativeGreedyRequestsReturnTransformersIds() throws Exception {
        String why = CudaDriver.unavailableReason();
        assumeTrue(why == null, "no CUDA GPU here (" + why + ")");
        List<Golden.Prompt> prompts = Golden.prompts();
        try (Model model = ModelLoader.load(TestModels.model("gutenberg-stories-llama-25m"), null);
             Model draft = ModelLoader.load(TestModels.model("gutenberg-stories-llama-3m"), null)) {
            for (SpeculativeConfig spec : List.of(SpeculativeConfig.ngram(4), SpeculativeConfig.draftModel(draft, 3))) {
                try (CudaBackend backend = new CudaBackend(0, CudaBackend.Precision.F32);
                     Engine engine = new Engine(model, backend, EngineConfig.DEFAULT, spec)) {
                    for (Golden.Prompt p : prompts) {
                        int[] got = submit(engine, new GenerationRequest(p.ids(), p.targetIds().length, SamplingParams.GREEDY, true, -1))
                                .get(120, TimeUnit.SECONDS);
                        assertArrayEquals(p.targetIds(), got, (spec.draftModel() == null ? "n-gram" : "draft model") + " on '" + p.text() + "'");
                    }
                }
            }
        }
    }

    private static CompletableFuture<int[]> submit(Engine e, GenerationRequest r) {
        CompletableFuture<int[]> f = new CompletableFuture<>();
        List<Integer> tokens = new ArrayList<>();
        e.submit(r, new TokenListener() {
            public void onToken(TokenEvent t) { tokens.add(t.token()); }

            public void onFinish(FinishReason reason, int p, int g, int c) { f.complete(tokens.stream().mapToInt(i -> i).toArray()); }

            public void onError(Throwable t) { f.completeExceptionally(t); }
        });
        return f;
    }
}
