package dev.tandem.core.sampling;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SamplerTest {
    static SamplingParams params(float t, int k, float p, float minP, long seed) {
        return new SamplingParams(t, k, p, minP, 1f, 64, 0f, 0f, seed);
    }

    @Test
    void greedyTakesTheFirstLargest() {
        assertEquals(2, new Sampler(SamplingParams.GREEDY).sample(new float[] {1, 3, 5, 5, -2}, new int[0], 0));
    }

    @Test
    void topKOneIsGreedyWhateverTheTemperature() {
        float[] logits = new float[5000];
        Random r = new Random(3);
        for (int i = 0; i < logits.length; i++) logits[i] = (float) r.nextGaussian();
        int best = Sampler.argmax(logits);
        for (int seed = 0; seed < 20; seed++) {
            assertEquals(best, new Sampler(params(1.5f, 1, 1f, 0f, seed)).sample(logits.clone(), new int[0], 0));
        }
    }

    @Test
    void samplesFollowTheSoftmaxAndTopPDropsTheTail() {
        float[] logits = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.15), (float) Math.log(0.05)};
        int[] counts = new int[4];
        Sampler s = new Sampler(params(1f, 0, 1f, 0f, 42));
        int n = 40_000;
        for (int i = 0; i < n; i++) counts[s.sample(logits.clone(), new int[0], 0)]++;
        double[] p = {0.5, 0.3, 0.15, 0.05};
        for (int i = 0; i < 4; i++) assertEquals(p[i], counts[i] / (double) n, 0.01, "token " + i);
        Sampler nucleus = new Sampler(params(1f, 0, 0.75f, 0f, 42));
        for (int i = 0; i < 2000; i++) assertTrue(nucleus.sample(logits.clone(), new int[0], 0) <= 1);
        Sampler minP = new Sampler(params(1f, 0, 1f, 0.5f, 42));
        for (int i = 0; i < 2000; i++) assertTrue(minP.sample(logits.clone(), new int[0], 0) <= 1);
    }

    @Test
    void aSeedReproducesTheDraws() {
        float[] logits = new float[1000];
        Random r = new Random(9);
        for (int i = 0; i < logits.length; i++) logits[i] = (float) r.nextGaussian();
        Sampler a = new Sampler(params(0.9f, 40, 0.95f, 0.05f, 123)), b = new Sampler(params(0.9f, 40, 0.95f, 0.05f, 123));
        for (int i = 0; i < 100; i++) assertEquals(a.sample(logits.clone(), new int[0], 0), b.sample(logits.clone(), new int[0], 0));
    }

    @Test
    void repeatPenaltyDemotesRecentTokens() {
        float[] logits = {2f, 1.9f};
        assertEquals(1, new Sampler(new SamplingParams(0f, 0, 1f, 0f, 1.2f, 64, 0f, 0f, 0)).sample(logits, new int[] {0}, 1));
    }

    @Test
    void frequencyAndPresencePenaltiesSubtractPerOccurrence() {
        // token 0 seen twice: 3 - (0.5 * 2 + 0.4) = 1.6 < token 1's 1.7, seen never.
        Sampler s = new Sampler(new SamplingParams(0f, 0, 1f, 0f, 1f, 64, 0.4f, 0.5f, 0));
        assertEquals(1, s.sample(new float[] {3f, 1.7f}, new int[] {0, 0}, 2));
        // the same sampler again: nothing left over from the previous call
        assertEquals(0, s.sample(new float[] {3f, 1.7f}, new int[] {1}, 1));
    }
}
