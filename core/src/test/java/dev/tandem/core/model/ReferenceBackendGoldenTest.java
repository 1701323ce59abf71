package dev.tandem.core.model;

import dev.tandem.core.TestModels;
import dev.tandem.core.backend.reference.ReferenceBackend;
import dev.tandem.core.format.MappedFile;
import dev.tandem.core.format.llama2c.Llama2cCheckpoint;
import dev.tandem.core.generate.Generator;
import dev.tandem.core.sampling.SamplingParams;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class ReferenceBackendGoldenTest {
    @Test
    void scalarReferenceReproducesLlama2cGreedyIds() {
        try (Arena arena = Arena.ofShared(); var backend = new ReferenceBackend()) {
            var f = MappedFile.map(TestModels.model("stories260K").resolve("stories260K.bin"), arena);
            var loaded = Llama2cCheckpoint.load(f);
            var model = new LlamaModel(loaded.config(), loaded.weights(), backend, 64, 1);
            var gen = new Generator(model, 512);
            List<Integer> out = new ArrayList<>();
            gen.generate(new int[] {1}, 64, SamplingParams.GREEDY, false, 2, t -> out.add(t));
            assertEquals(java.util.Arrays.stream(dev.tandem.core.Golden.STORIES260K_GREEDY).skip(1).boxed().toList(), out);
        }
    }
}
