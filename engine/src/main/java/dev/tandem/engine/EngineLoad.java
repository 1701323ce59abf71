package dev.tandem.engine;

/**
 * What a cluster router needs to know of a worker to place requests (Splitwise's routing inputs), as of the
 * engine's last step.
 *
 * @param pendingPromptTokens prompt tokens queued or in prefill and not yet computed
 * @param running             sequences in the batch
 * @param reserved            sequences whose blocks are reserved for a hand-over still on its way
 */
public record EngineLoad(Role role, long pendingPromptTokens, int running, int waiting, int reserved, int freeBlocks, int totalBlocks,
                         long kvBytesReceived) {
}
