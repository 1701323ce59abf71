package dev.tandem.server.cli;

import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.OptShapes;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `tandem init-random` for OPT, and the commands that run a model on what it writes. */
class InitRandomOptTest {
    @TempDir Path tmp;

    @Test
    void anOptPresetIsWrittenAsOptForCausalLmAndRunsOnEveryCpuBackend() throws IOException {
        Path dir = tmp.resolve("opt");
        CliTest.Result w = CliTest.run("init-random", "--shape", "opt-tiny", "--architecture", "opt", "--dtype", "f32", "--seed", "7",
                "--std", "0.2", "--out", dir.toString());
        assertEquals(0, w.code(), w.err());
        assertTrue(Files.readString(dir.resolve("config.json")).contains("\"OPTForCausalLM\""));
        try (Model m = ModelLoader.load(dir, null)) {
            assertEquals(OptShapes.of("opt-tiny").layers(), m.config().layers());
            assertTrue(m.config().isOpt());
        }
        String ids = "0,5,77,300,12,400,511,3";
        float[] cpu = logits(dir, ids, "cpu"), ref = logits(dir, ids, "reference");
        double scale = 0, err = 0;
        for (int i = 0; i < ref.length; i++) {
            scale = Math.max(scale, Math.abs(ref[i]));
            err = Math.max(err, Math.abs(cpu[i] - ref[i]));
        }
        assertTrue(err <= 1e-5 * scale, "cpu against reference logits: " + err + " of scale " + scale);
        CliTest.Result g = CliTest.run("generate", "--model", dir.toString(), "--prompt", "Once", "--max-tokens", "6", "--temperature", "0");
        assertEquals(0, g.code(), g.err());
        assertTrue(g.err().contains("generated: 6 tokens"), g.err());
    }

    private float[] logits(Path dir, String ids, String device) throws IOException {
        Path out = tmp.resolve(device + ".logits");
        CliTest.Result r = CliTest.run("logits", "--model", dir.toString(), "--ids", ids, "--device", device, "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        var buf = ByteBuffer.wrap(Files.readAllBytes(out)).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        float[] v = new float[buf.remaining()];
        buf.get(v);
        return v;
    }

    @Test
    void mismatchedArchitecturesAndGgufOutputAreRefused() {
        CliTest.Result r = CliTest.run("init-random", "--config", "llama-110m", "--architecture", "opt", "--dtype", "f32", "--out", tmp.resolve("x").toString());
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("--architecture opt but 'llama-110m' is llama"), r.err());
        r = CliTest.run("init-random", "--config", "opt-125m", "--dtype", "f32", "--out", tmp.resolve("x.gguf").toString());
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("Hugging Face layout only"), r.err());
    }
}
