package dev.tandem.engine.handover;

import dev.tandem.engine.sched.Scheduler;
import dev.tandem.engine.transport.KvStream;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * The forward pass's per-layer hook on a prompt worker: as soon as a layer's keys and values of the step are in
 * the cache, the blocks each handed-over sequence's chunk touched are queued on its stream, so the transfer of
 * layer l overlaps the compute of layers l+1... A block shared by two chunks goes twice; the later copy wins.
 * Cached prefix blocks (prefix caching) go with the first chunk, since their layers are all in the cache already.
 */
public final class LayerStreamer implements IntConsumer {
    private record Part(KvStream stream, int[] blocks, int firstIndex) {}

    private final List<Part> parts;

    private LayerStreamer(List<Part> parts) { this.parts = parts; }

    /** The hook for this step, or null when no sequence in it is being handed over. */
    public static LayerStreamer forStep(List<Scheduler.Scheduled> step, int blockSize) {
        List<Part> parts = null;
        for (Scheduler.Scheduled s : step) {
            KvStream stream = s.seq().handover();
            if (stream == null || s.count() == 0) continue;
            // The first chunk after admission also sends the prompt's prefix found in this worker's prefix cache:
            // the token worker has none of it.
            boolean firstChunk = s.start() == s.seq().cachedPromptTokens();
            int first = firstChunk ? 0 : s.start() / blockSize, last = (s.start() + s.count() - 1) / blockSize;
            int[] blocks = new int[last - first + 1];
            for (int i = 0; i < blocks.length; i++) blocks[i] = s.seq().block(first + i);
            if (parts == null) parts = new ArrayList<>();
            parts.add(new Part(stream, blocks, first));
        }
        return parts == null ? null : new LayerStreamer(parts);
    }

    @Override
    public void accept(int layer) {
        for (Part p : parts) p.stream.sendLayer(layer, p.blocks, p.firstIndex);
    }
}
