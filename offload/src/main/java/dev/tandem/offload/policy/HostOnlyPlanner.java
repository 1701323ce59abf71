package dev.tandem.offload.policy;

/**
 * `--offload auto` on the CPU backend, where there is no GPU tier for FlexGen's LP to place anything on: the whole job
 * is one block (one batch: every weight is read once per generated token however many sequences share it), the KV
 * cache and activations stay in RAM, and as many of the weights as the rest of the RAM budget holds; the others are
 * read from disk layer by layer. When the cache of every sequence does not fit, the block shrinks until it does.
 */
public final class HostOnlyPlanner {
    private HostOnlyPlanner() {}

    /**
     * @param weightBytes   bytes of the layers' matrices as the CPU backend packs them
     * @param kvBytesPerSeq bytes of one sequence's cache at its longest (prompt + generation), all layers
     * @param layerBytes    bytes of the largest layer's matrices (two layers' worth stream through RAM)
     * @param sequences     sequences in the job
     * @param cpuMem        the RAM budget
     */
    public static OffloadPolicy plan(long weightBytes, long kvBytesPerSeq, long layerBytes, int sequences, long cpuMem) {
        if (sequences < 1) throw new IllegalArgumentException("no sequences to plan for");
        long staging = 4 * layerBytes; // two slots plus two staging buffers
        long reserve = staging + (64L << 20); // activations and scratch
        if (cpuMem < reserve + kvBytesPerSeq) {
            throw new IllegalArgumentException(String.format("--cpu-mem %,d bytes cannot hold one sequence's KV cache (%,d) and two layers "
                    + "in flight (%,d); give more --cpu-mem", cpuMem, kvBytesPerSeq, staging));
        }
        int block = (int) Math.min(sequences, (cpuMem - reserve) / kvBytesPerSeq);
        long forWeights = cpuMem - reserve - block * kvBytesPerSeq;
        double inRam = weightBytes == 0 ? 100 : Math.min(100, Math.floor(100.0 * forWeights / weightBytes));
        return new OffloadPolicy(block, 1, 0, inRam, 0, 100, 0, 100, false, false, true);
    }
}
