package dev.tandem.core;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.format.hf.RandomHfModel;
import dev.tandem.core.generate.Generator;
import dev.tandem.core.kv.BlockPool;
import dev.tandem.core.kv.BlockTable;
import dev.tandem.core.model.DecoderModel;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.StepBatch;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.core.tensor.DType;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Seeded random OPT models written by Tandem's own writer (the files `tandem init-random` writes), once per JVM in a
 * temporary folder, and the few steps the OPT tests run on them. opt-tiny with seed {@value #GOLDEN_SEED} and std
 * {@value #STD} is the model whose greedy ids and logits Hugging Face computed (scripts/device/check_opt.py:
 * `tandem init-random --config opt-tiny --dtype f32 --seed 7 --std 0.2`).
 */
public final class OptTestModels {
    private OptTestModels() {}

    public static final long GOLDEN_SEED = 7;

    /**
     * Weights 10x init-random's default: at 0.02 the biases and the embedding decide every step and opt-tiny repeats one
     * token; at 0.2 the greedy ids vary and the top two logits stay about 1e-3 of the scale apart.
     */
    public static final float STD = 0.2f;

    /** The folder holding {@code c} written as f32 with {@code seed}; written on first use. */
    public static synchronized Path folder(String name, ModelConfig c, long seed) {
        try {
            Path dir = root().resolve(name + "-" + seed);
            if (!Files.exists(dir.resolve("config.json"))) RandomHfModel.write(dir, c, DType.F32, null, seed, STD, 2);
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Path root;

    /** This JVM's folder of test models, removed when the JVM exits. */
    private static Path root() throws IOException {
        if (root == null) {
            Path r = Files.createTempDirectory("tandem-opt-test-");
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try (var walk = Files.walk(r)) {
                    walk.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
                } catch (IOException ignored) {
                    // a temporary folder left behind
                }
            }));
            root = r;
        }
        return root;
    }

    /** Greedy ids after {@code prompt}, generated one sequence at a time through {@link Generator} (EOS not special). */
    public static int[] greedy(Backend backend, Model model, int[] prompt, int n, int maxTokensPerStep) {
        DecoderModel m = DecoderModel.create(model.config(), model.weights(), backend, maxTokensPerStep, 1);
        List<Integer> out = new ArrayList<>();
        try (Generator g = new Generator(m, model.config().contextLength())) {
            g.generate(prompt, n, SamplingParams.GREEDY, false, -1, out::add);
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Every position's logits of {@code seq} run as one prompt (teacher-forced), rows x vocab. */
    public static float[][] logits(Backend backend, Model model, int[] seq) {
        ModelConfig c = model.config();
        DecoderModel m = DecoderModel.create(c, model.weights(), backend, seq.length, seq.length);
        int blocks = Math.ceilDiv(seq.length, KvLayout.DEFAULT_BLOCK_SIZE);
        KvStorage kv = backend.allocateKv(new KvLayout(c.layers(), blocks, KvLayout.DEFAULT_BLOCK_SIZE, c.kvHeads(), c.headDim()));
        BlockTable table = new BlockTable(new BlockPool(blocks, KvLayout.DEFAULT_BLOCK_SIZE));
        table.ensureCapacity(seq.length);
        int[] rows = new int[seq.length];
        for (int i = 0; i < rows.length; i++) rows[i] = i;
        Activation logits = m.forward(StepBatch.ofSequence(seq, 0, seq.length, table, rows), kv);
        float[][] out = new float[seq.length][c.vocabSize()];
        for (int i = 0; i < seq.length; i++) backend.read(logits, i, out[i]);
        return out;
    }

    /** max |got - want| over all rows, as a fraction of max |want|. */
    public static double relativeError(float[][] want, float[][] got) {
        double scale = 0, err = 0;
        for (int r = 0; r < want.length; r++) {
            for (int c = 0; c < want[r].length; c++) {
                scale = Math.max(scale, Math.abs(want[r][c]));
                err = Math.max(err, Math.abs(got[r][c] - want[r][c]));
            }
        }
        return err / scale;
    }
}
