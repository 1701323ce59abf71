package dev.tandem.core.model;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The sizes of Meta's OPT family (facebook/opt-*: FFN 4 x hidden, vocabulary 50272, 2048 positions), by name, for
 * random-weight models and offloading plans at FlexGen's shapes; opt-350m is left out (post-LayerNorm and projected
 * embeddings, which Tandem does not run). opt-tiny is a test model that runs in milliseconds anywhere.
 */
public final class OptShapes {
    private OptShapes() {}

    /** Random OPT models take BOS "&lt;s&gt;" = 0 and EOS "&lt;/s&gt;" = 2 (OPT's own ids for those tokens). */
    private static final int BOS = 0, EOS = 2;

    private static final Map<String, ModelConfig> SHAPES = new LinkedHashMap<>();

    static {
        SHAPES.put("opt-tiny", ModelConfig.opt(64, 256, 2, 4, 512, 128, 1e-5f, BOS, EOS));
        put("opt-125m", 768, 12, 12);
        put("opt-1.3b", 2048, 24, 32);
        put("opt-2.7b", 2560, 32, 32);
        put("opt-6.7b", 4096, 32, 32);
        put("opt-13b", 5120, 40, 40);
        put("opt-30b", 7168, 48, 56);
        put("opt-66b", 9216, 64, 72);
        put("opt-175b", 12288, 96, 96);
    }

    private static void put(String name, int dim, int layers, int heads) {
        SHAPES.put(name, ModelConfig.opt(dim, 4 * dim, layers, heads, 50272, 2048, 1e-5f, BOS, EOS));
    }

    /** The shape called {@code name}, or null. */
    public static ModelConfig of(String name) { return SHAPES.get(name); }

    /** Every name, smallest first. */
    public static java.util.Set<String> names() { return java.util.Collections.unmodifiableSet(SHAPES.keySet()); }
}
