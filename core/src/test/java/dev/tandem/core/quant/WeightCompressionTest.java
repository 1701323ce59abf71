package dev.tandem.core.quant;

import dev.tandem.core.OptTestModels;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.LayerWeights;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.OptShapes;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Compressing a whole model's layer matrices: everything else of the layer comes through untouched. */
class WeightCompressionTest {
    /** OPT: no gate, biases on every matrix and norm. They stay as stored; the model still runs and predicts alike. */
    @Test
    void anOptModelKeepsItsBiasesAndHasNoGateToCompress() {
        try (Model opt = ModelLoader.load(OptTestModels.folder("opt-tiny", OptShapes.of("opt-tiny"), OptTestModels.GOLDEN_SEED), null);
             Model rounded = WeightCompression.roundTrip(new Model(opt.config(), opt.weights(), opt.tokenizer(), opt.format(), () -> {}));
             CpuBackend cpu = new CpuBackend(1)) {
            for (int i = 0; i < opt.weights().layers().size(); i++) {
                LayerWeights was = opt.weights().layers().get(i), is = rounded.weights().layers().get(i);
                assertNull(is.gate());
                assertNotNull(was.bo());
                assertSame(was.bo(), is.bo());
                assertSame(was.attnNormBias(), is.attnNormBias());
                assertSame(was.ffnNormBias(), is.ffnNormBias());
                assertSame(was.bUp(), is.bUp());
                assertSame(was.bDown(), is.bDown());
                assertNotEquals(was.up(), is.up());
            }
            int[] seq = {2, 15, 77, 3, 41, 9, 120, 5};
            double err = OptTestModels.relativeError(OptTestModels.logits(cpu, opt, seq), OptTestModels.logits(cpu, rounded, seq));
            // Random weights of std 0.2 (OptTestModels) suit 4 bits badly: 0.24 of the scale; what is checked here is
            // that the compressed model runs on its own biases and position table and stays near the original.
            assertTrue(err > 0 && err < 0.5, "4-bit weights move OPT's logits by " + err + " of their scale");
        }
    }
}
