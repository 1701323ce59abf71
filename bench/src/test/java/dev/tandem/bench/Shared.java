package dev.tandem.bench;

import java.nio.file.Files;
import java.nio.file.Path;

/** The shared test data beside the repository: real traces and small real models. */
final class Shared {
    private Shared() {}

    static Path dir() {
        String p = System.getProperty("tandem.shared");
        Path dir = p != null ? Path.of(p) : Path.of("../../shared");
        if (!Files.isDirectory(dir.resolve("traces"))) {
            throw new IllegalStateException("shared test data not found: expected " + dir.toAbsolutePath().normalize() + "/traces (set -Dtandem.shared=DIR)");
        }
        return dir;
    }

    static Path conv() {
        return dir().resolve("traces/AzureLLMInferenceTrace_conv.csv");
    }

    static Path code() {
        return dir().resolve("traces/AzureLLMInferenceTrace_code.csv");
    }

    static Path model() {
        return dir().resolve("models/gutenberg-stories-llama-25m");
    }
}
