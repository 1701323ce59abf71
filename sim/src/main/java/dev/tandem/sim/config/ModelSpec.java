package dev.tandem.sim.config;

/**
 * What the simulator needs of a model beyond its iteration times: KV-cache bytes per token (for memory
 * limits and the KV transfer), weight bytes (memory left for the KV cache) and layers (layer-wise transfer).
 */
public record ModelSpec(String name, int layers, long kvBytesPerToken, long weightBytes) {
    public ModelSpec {
        if (layers < 1 || kvBytesPerToken < 1 || weightBytes < 0) {
            throw new IllegalArgumentException("model '" + name + "': layers and kv bytes per token must be >= 1, weight bytes >= 0");
        }
    }

    /** Llama-2-70B: 80 layers, GQA with 8 KV heads of 128: 2 x 80 x 8 x 128 x 2 B per token; 135e9 B of weights (SplitwiseSim). */
    public static final ModelSpec LLAMA2_70B = new ModelSpec("llama2-70b", 80, 2L * 80 * 8 * 128 * 2, 135_000_000_000L);
    /** BLOOM-176B: 70 layers, hidden 14336, full multi-head attention: 2 x 70 x 14336 x 2 B per token; 329e9 B. */
    public static final ModelSpec BLOOM_176B = new ModelSpec("bloom-176b", 70, 2L * 70 * 14336 * 2, 329_000_000_000L);

    /** The same model with another KV size per token (SplitwiseSim's estimate ignores GQA: 2 x hidden x layers x 2 B). */
    public ModelSpec withKvBytesPerToken(long bytes) {
        return new ModelSpec(name, layers, bytes, weightBytes);
    }

    public static ModelSpec byName(String name) {
        return switch (name) {
            case "llama2-70b" -> LLAMA2_70B;
            case "bloom-176b" -> BLOOM_176B;
            default -> throw new IllegalArgumentException("unknown model '" + name
                    + "' (known: llama2-70b, bloom-176b; another model needs model_spec: {layers, kv_bytes_per_token, weight_bytes} in the config)");
        };
    }
}
