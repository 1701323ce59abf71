package dev.tandem.sim.engine;

import java.util.Arrays;

/**
 * The simulator's future events: a binary min-heap over two primitive arrays (time, and a key packing
 * an insertion sequence number, the event kind and its argument). Equal times pop in insertion order, so a
 * run is deterministic; no object is allocated per event.
 */
final class EventQueue {
    static final int ARRIVAL = 0, STEP_END = 1, KV_DONE = 2, REBALANCE = 3;
    private static final int ARG_BITS = 28, KIND_BITS = 3;
    private static final long ARG_MASK = (1L << ARG_BITS) - 1;

    private double[] times = new double[1024];
    private long[] keys = new long[1024];
    private int size;
    private long seq;

    void push(double time, int kind, int arg) {
        if (arg < 0 || arg > ARG_MASK) throw new IllegalStateException("event argument " + arg + " out of range");
        if (size == times.length) {
            times = Arrays.copyOf(times, size * 2);
            keys = Arrays.copyOf(keys, size * 2);
        }
        long key = (seq++ << (ARG_BITS + KIND_BITS)) | ((long) kind << ARG_BITS) | arg;
        int i = size++;
        while (i > 0) { // sift up with a hole
            int parent = (i - 1) >>> 1;
            if (!less(time, key, times[parent], keys[parent])) break;
            times[i] = times[parent];
            keys[i] = keys[parent];
            i = parent;
        }
        times[i] = time;
        keys[i] = key;
    }

    boolean isEmpty() { return size == 0; }

    double topTime() { return times[0]; }

    int topKind() { return (int) ((keys[0] >>> ARG_BITS) & ((1 << KIND_BITS) - 1)); }

    int topArg() { return (int) (keys[0] & ARG_MASK); }

    void pop() {
        int n = --size;
        if (n == 0) return;
        double t = times[n];
        long k = keys[n];
        int i = 0;
        while (true) { // sift down with a hole
            int c = 2 * i + 1;
            if (c >= n) break;
            if (c + 1 < n && less(times[c + 1], keys[c + 1], times[c], keys[c])) c++;
            if (!less(times[c], keys[c], t, k)) break;
            times[i] = times[c];
            keys[i] = keys[c];
            i = c;
        }
        times[i] = t;
        keys[i] = k;
    }

    private static boolean less(double t1, long k1, double t2, long k2) {
        return t1 < t2 || (t1 == t2 && k1 < k2);
    }
}
