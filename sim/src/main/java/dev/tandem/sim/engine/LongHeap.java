package dev.tandem.sim.engine;

import java.util.Arrays;

/** A growable binary min-heap of longs (an instance's sequences keyed by the iteration they finish at). */
final class LongHeap {
    private long[] a = new long[16];
    private int size;

    boolean isEmpty() { return size == 0; }

    long peek() { return a[0]; }

    void push(long v) {
        if (size == a.length) a = Arrays.copyOf(a, size * 2);
        int i = size++;
        while (i > 0) {
            int p = (i - 1) >>> 1;
            if (a[p] <= v) break;
            a[i] = a[p];
            i = p;
        }
        a[i] = v;
    }

    long pop() {
        long top = a[0];
        long v = a[--size];
        int i = 0;
        while (true) {
            int c = 2 * i + 1;
            if (c >= size) break;
            if (c + 1 < size && a[c + 1] < a[c]) c++;
            if (a[c] >= v) break;
            a[i] = a[c];
            i = c;
        }
        if (size > 0) a[i] = v;
        return top;
    }
}
