package dev.tandem.cuda.backend;

import dev.tandem.core.OptTestModels;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.OptShapes;
import dev.tandem.cuda.CudaDriver;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * OptModel on the GPU against the CPU backend on random OPT models of head_dim 16 (opt-tiny: the split attention kernel
 * for prefill rows too), 64 and 128 (FlashAttention prefill tiles, as every real OPT size has): in f32 the logits within
 * 1e-4 of their scale and the greedy ids equal; in bf16 the logits within 2e-2 of their scale.
 */
class OptCudaModelTest {
    @BeforeAll
    static void gpu() {
        String why = CudaDriver.unavailableReason();
        if (why != null) System.err.println("OptCudaModelTest skipped: no CUDA GPU here (" + why + "); it runs on the GPU machine");
        assumeTrue(why == null, "no CUDA GPU here (" + why + ")");
    }

    record Shape(String name, ModelConfig config) {
        @Override
        public String toString() { return name; }
    }

    static Stream<Shape> shapes() {
        return Stream.of(new Shape("opt-tiny", OptShapes.of("opt-tiny")),
                new Shape("head_dim-64", ModelConfig.opt(256, 1024, 2, 4, 512, 512, 1e-5f, 0, 2)),
                new Shape("head_dim-128", ModelConfig.opt(256, 1024, 2, 2, 512, 512, 1e-5f, 0, 2)));
    }

    /** Every position's logits of one prompt, GPU against CPU, as a fraction of their scale. */
    static double logitsError(Shape s, Model model, Backend cpu, CudaBackend gpu) {
        int[] seq = prompt(s);
        return OptTestModels.relativeError(OptTestModels.logits(cpu, model, seq), OptTestModels.logits(gpu, model, seq));
    }

    /** A prompt of up to 100 ids (several FlashAttention tiles of 64 rows), leaving room for generation. */
    static int[] prompt(Shape s) {
        int n = Math.min(100, s.config().contextLength() - 30), vocab = s.config().vocabSize();
        Random r = new Random(n);
        int[] ids = new int[n];
        for (int i = 1; i < n; i++) ids[i] = 3 + r.nextInt(vocab - 3);
        return ids;
    }

    static Model load(Shape s) {
        return ModelLoader.load(OptTestModels.folder(s.name(), s.config(), OptTestModels.GOLDEN_SEED), null);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("shapes")
    void f32LogitsAndGreedyIdsEqualTheCpuBackend(Shape s) {
        try (Model model = load(s); Backend cpu = new CpuBackend(2); CudaBackend gpu = new CudaBackend(0, CudaBackend.Precision.F32)) {
            double err = logitsError(s, model, cpu, gpu);
            System.err.printf("OptCudaModelTest %s f32: logits error %.2e of the scale%n", s, err);
            assertTrue(err <= 1e-4, s + " f32 logits differ from the CPU backend's by " + err + " of their scale");
            int[] p = java.util.Arrays.copyOf(prompt(s), 20);
            int[] want = OptTestModels.greedy(cpu, model, p, 24, 64);
            assertArrayEquals(want, OptTestModels.greedy(gpu, model, p, 24, 64), s + " f32 greedy ids");
            assertArrayEquals(want, OptTestModels.greedy(gpu, model, p, 24, 7), s + " f32 greedy ids, prefill in chunks of 7");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("shapes")
    void bf16LogitsWithin2e2OfTheCpuBackend(Shape s) {
        try (Model model = load(s); Backend cpu = new CpuBackend(2); CudaBackend gpu = new CudaBackend(0, CudaBackend.Precision.BF16)) {
            double err = logitsError(s, model, cpu, gpu);
            int[] p = java.util.Arrays.copyOf(prompt(s), 20);
            int[] want = OptTestModels.greedy(cpu, model, p, 24, 64), got = OptTestModels.greedy(gpu, model, p, 24, 64);
            int same = 0;
            while (same < want.length && want[same] == got[same]) same++;
            System.err.printf("OptCudaModelTest %s bf16: logits error %.2e of the scale; greedy prefix agreement %d/%d%n", s, err, same, want.length);
            assertTrue(err <= 2e-2, s + " bf16 logits differ from the CPU backend's by " + err + " of their scale");
        }
    }
}
