package dev.tandem.core;

import java.nio.file.Files;
import java.nio.file.Path;

/** Where the real small test models live (../shared/models beside the repository). */
public final class TestModels {
    private TestModels() {}

    public static Path shared() {
        String p = System.getProperty("tandem.shared");
        Path dir = p != null ? Path.of(p) : Path.of("../../shared");
        if (!Files.isDirectory(dir.resolve("models"))) {
            throw new IllegalStateException("test models not found: expected " + dir.toAbsolutePath().normalize()
                    + "/models (set -Dtandem.shared=DIR)");
        }
        return dir;
    }

    public static Path model(String name) { return shared().resolve("models").resolve(name); }
}
