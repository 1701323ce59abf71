package dev.tandem.server.http;

import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineConfig;
import dev.tandem.engine.spec.SpeculativeConfig;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * A real server on 127.0.0.1 with an ephemeral port, in front of a real engine on the 25M test model. Models and the
 * CPU backend are loaded once per JVM and shared; each server has its own engine (only one runs work at a time).
 */
final class TestServer implements AutoCloseable {
    static final Path SHARED = Path.of(System.getProperty("tandem.shared", "../../shared"));
    static final Path MODEL_DIR = SHARED.resolve("models/gutenberg-stories-llama-25m");
    static final String MODEL = "gutenberg-stories-llama-25m";
    static final EngineConfig SMALL = EngineConfig.DEFAULT.withKvCacheBytes(64L << 20);

    private static final Map<Path, Model> MODELS = new HashMap<>();
    /** Helidon's start/stop lines at INFO for every server would drown the test output. */
    private static final java.util.logging.Logger HELIDON_LOG = java.util.logging.Logger.getLogger("io.helidon");

    static {
        HELIDON_LOG.setLevel(java.util.logging.Level.WARNING);
    }
    private static CpuBackend backend;

    final Engine engine;
    final OpenAiServer server;
    final String url;

    private TestServer(Engine engine, OpenAiServer server) {
        this.engine = engine;
        this.server = server;
        this.url = server.url();
    }

    static TestServer start() { return start(SMALL, c -> c); }

    static TestServer start(EngineConfig engineConfig, UnaryOperator<ServerConfig> config) {
        return start(MODEL_DIR, engineConfig, config);
    }

    static synchronized TestServer start(Path modelDir, EngineConfig engineConfig, UnaryOperator<ServerConfig> config) {
        return start(modelDir, engineConfig, config, null);
    }

    /** A server whose engine speculates with a draft model of {@code draftDir}, k tokens per step. */
    static synchronized TestServer speculative(Path draftDir, int k) {
        Model draft = MODELS.computeIfAbsent(draftDir, d -> ModelLoader.load(d, null));
        return start(MODEL_DIR, SMALL, c -> c, SpeculativeConfig.draftModel(draft, k));
    }

    private static synchronized TestServer start(Path modelDir, EngineConfig engineConfig, UnaryOperator<ServerConfig> config, SpeculativeConfig spec) {
        if (backend == null) backend = new CpuBackend(Runtime.getRuntime().availableProcessors());
        Model model = MODELS.computeIfAbsent(modelDir, d -> ModelLoader.load(d, null));
        Engine engine = new Engine(model, backend, engineConfig, spec);
        return new TestServer(engine, OpenAiServer.start(engine, config.apply(ServerConfig.local(MODEL))));
    }

    @Override
    public void close() {
        server.close();
        engine.close();
    }
}
