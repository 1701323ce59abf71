package dev.tandem.sim.engine;

import java.util.Arrays;

/** A growable ring of ints (request ids): FIFO queues with a push-front for preempted requests. */
final class IntDeque {
    private int[] a = new int[16];
    private int head, size;

    boolean isEmpty() { return size == 0; }

    int size() { return size; }

    void addLast(int v) {
        grow();
        a[(head + size++) & (a.length - 1)] = v;
    }

    void addFirst(int v) {
        grow();
        head = (head - 1) & (a.length - 1);
        a[head] = v;
        size++;
    }

    int peekFirst() { return a[head]; }

    int pollFirst() {
        int v = a[head];
        head = (head + 1) & (a.length - 1);
        size--;
        return v;
    }

    private void grow() {
        if (size < a.length) return;
        int[] b = new int[a.length * 2];
        for (int i = 0; i < size; i++) b[i] = a[(head + i) & (a.length - 1)];
        a = b;
        head = 0;
    }

    @Override
    public String toString() {
        int[] out = new int[size];
        for (int i = 0; i < size; i++) out[i] = a[(head + i) & (a.length - 1)];
        return Arrays.toString(out);
    }
}
