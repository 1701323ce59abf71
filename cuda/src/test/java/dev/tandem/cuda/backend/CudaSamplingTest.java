package dev.tandem.cuda.backend;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;
import dev.tandem.cuda.CudaDriver;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Sampling on the GPU draws from the distribution the host sampler defines (temperature, then top-k, then the top-p
 * prefix of the sorted probabilities, then min-p): 20,000 draws against the exact probabilities, by chi-square,
 * and never a token outside the kept set; temperature 0 is the argmax.
 */
class CudaSamplingTest {
    static final int VOCAB = 1000, ROWS = 2000, DRAWS = 20_000;

    @BeforeAll
    static void gpu() {
        String why = CudaDriver.unavailableReason();
        if (why != null) System.err.println("CudaSamplingTest skipped: no CUDA GPU here (" + why + "); it runs on the GPU machine");
        assumeTrue(why == null, "no CUDA GPU here (" + why + ")");
    }

    @ParameterizedTest(name = "T {0} top-k {1} top-p {2} min-p {3}")
    @CsvSource({"1.0, 0, 1.0, 0.0", "0.8, 40, 0.9, 0.05", "0.5, 5, 1.0, 0.0", "1.3, 0, 0.6, 0.0", "0.0, 0, 1.0, 0.0"})
    void drawsFollowTheHostSamplersDistribution(float temperature, int topK, float topP, float minP) {
        Random rnd = new Random(11);
        float[] values = new float[VOCAB];
        for (int i = 0; i < VOCAB; i++) values[i] = (float) (rnd.nextGaussian() * 2.5);
        try (CudaBackend b = new CudaBackend(0, CudaBackend.Precision.F32); Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(4L * VOCAB);
            MemorySegment.copy(values, 0, seg, ValueLayout.JAVA_FLOAT, 0, VOCAB);
            var table = b.upload(new Tensor("row", DType.F32, new long[] {1, VOCAB}, seg));
            Activation logits = b.allocate(ROWS, VOCAB);
            double[] expected = expected(values, temperature, topK, topP, minP);
            long[] counts = new long[VOCAB];
            SplittableRandom draws = new SplittableRandom(5);
            int[] ids = new int[ROWS];
            float[] t = filled(temperature), p = filled(topP), m = filled(minP), u = new float[ROWS];
            int[] k = new int[ROWS];
            Arrays.fill(k, topK);
            for (int done = 0; done < DRAWS; done += ROWS) {
                b.embed(table, new int[ROWS], logits); // sampling overwrites the row: refill
                for (int i = 0; i < ROWS; i++) u[i] = (float) draws.nextDouble();
                b.sample(logits, t, k, p, m, u, ids);
                for (int id : ids) counts[id]++;
            }
            double chi2 = 0;
            int categories = 0;
            for (int i = 0; i < VOCAB; i++) {
                if (expected[i] == 0) {
                    assertEquals(0, counts[i], "token " + i + " is outside the kept set but was drawn " + counts[i] + " times");
                    continue;
                }
                double e = expected[i] * DRAWS;
                chi2 += (counts[i] - e) * (counts[i] - e) / e;
                categories++;
            }
            if (categories <= 1) return; // greedy: every draw is the argmax, checked above
            int df = categories - 1;
            double bound = df + 6 * Math.sqrt(2.0 * df);
            assertTrue(chi2 < bound, "chi-square " + chi2 + " over " + categories + " kept tokens exceeds " + bound);
        }
    }

    private static float[] filled(float v) {
        float[] a = new float[ROWS];
        Arrays.fill(a, v);
        return a;
    }

    /** The host sampler's probabilities: sort descending, top-k, softmax, top-p prefix, min-p. */
    static double[] expected(float[] logits, float temperature, int topK, float topP, float minP) {
        double[] out = new double[logits.length];
        Integer[] order = IntStream.range(0, logits.length).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingDouble((Integer i) -> -logits[i]).thenComparingInt(i -> i));
        if (temperature == 0) {
            out[order[0]] = 1;
            return out;
        }
        int k = topK > 0 ? Math.min(topK, logits.length) : logits.length;
        double[] prob = new double[k];
        double sum = 0;
        for (int i = 0; i < k; i++) {
            prob[i] = Math.exp((logits[order[i]] - logits[order[0]]) / temperature);
            sum += prob[i];
        }
        for (int i = 0; i < k; i++) prob[i] /= sum;
        int keep = k;
        if (topP < 1) {
            double cum = 0;
            for (int i = 0; i < k; i++) {
                cum += prob[i];
                if (cum >= topP) {
                    keep = i + 1;
                    break;
                }
            }
        }
        int kept = 1;
        while (kept < keep && prob[kept] >= prob[0] * minP) kept++;
        double total = 0;
        for (int i = 0; i < kept; i++) total += prob[i];
        for (int i = 0; i < kept; i++) out[order[i]] = prob[i] / total;
        return out;
    }
}
