package dev.tandem.bench;

/**
 * A request the load run will send: when (seconds after the run starts), and how big.
 *
 * @param traceLine the trace line its sizes came from
 */
public record PlannedRequest(int index, double offsetS, int promptTokens, int outputTokens, int traceLine) {}
