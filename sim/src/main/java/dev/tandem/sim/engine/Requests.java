package dev.tandem.sim.engine;

import dev.tandem.sim.workload.Workload;

import java.util.Arrays;

/**
 * Per-request simulation state as parallel arrays indexed by request id (struct of arrays: no object per request).
 * {@code context} is the request's KV tokens when it last joined a decode batch (or the tokens to prefill
 * while queued); its tokens now are {@code context + iteration - joinIteration}.
 */
final class Requests {
    static final byte WAITING = 0, QUEUED = 1, PREFILLING = 2, TRANSFERRING = 3, RUNNING = 4, DONE = 5, REJECTED = 6;

    final double[] arrival;
    final int[] prompt, output;
    final double[] firstToken, finish;
    final int[] promptInstance, tokenInstance;
    final int[] context, remaining, runSlot;
    final int[] prefilled;  // tokens of context already prefilled (chunked prefill: a prompt over several iterations)
    final long[] joinIteration, finishIteration, joinOrder;
    final short[] preemptions;
    final byte[] state;

    Requests(Workload w) {
        int n = w.size();
        arrival = w.arrivalS();
        prompt = w.promptTokens();
        output = w.outputTokens();
        firstToken = new double[n];
        finish = new double[n];
        Arrays.fill(firstToken, Double.NaN);
        Arrays.fill(finish, Double.NaN);
        promptInstance = new int[n];
        tokenInstance = new int[n];
        context = new int[n];
        remaining = new int[n];
        runSlot = new int[n];
        prefilled = new int[n];
        joinIteration = new long[n];
        finishIteration = new long[n];
        joinOrder = new long[n];
        preemptions = new short[n];
        state = new byte[n];
    }

    int size() { return arrival.length; }
}
