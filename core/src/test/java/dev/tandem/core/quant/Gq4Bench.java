package dev.tandem.core.quant;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.AttentionBatch;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.backend.KvStorage;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.tensor.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.SplittableRandom;

/**
 * GQ4 decompression and compression speed on one thread (not a unit test): a 4096 x 4096 weight grouped along out,
 * and a KV cache of 4096 tokens x 8 heads x 128 grouped along head_dim, decompressed to f32 and bf16 by the Vector
 * API path and by a scalar loop over the documented layout (the same bits), and compressed; then CPU decode attention
 * over an f32 and a GQ4 cache. Best of many runs, as the machine may be shared; GB/s counts the bytes written.
 *
 * <pre>
 * mvn -q -pl core test-compile
 * java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp core/target/classes:core/target/test-classes dev.tandem.core.quant.Gq4Bench
 * </pre>
 */
public final class Gq4Bench {
    public static void main(String[] args) {
        int runs = args.length > 0 ? Integer.parseInt(args[0]) : 15;
        System.out.printf("GQ4 bench, one thread, %s floats per vector, best of %d runs%n", Gq4Dequantizer.F.length(), runs);
        System.out.printf("%-34s %-6s %10s %10s %10s%n", "tensor", "to", "vector ms", "scalar ms", "vector GB/s");
        try (Arena arena = Arena.ofConfined()) {
            bench(arena, "weight 4096x4096, groups along out", 0, runs, 4096, 4096);
            bench(arena, "KV 4096x8x128, groups along hd", 2, runs, 4096, 8, 128);
        }
        attention(runs);
    }

    /**
     * CPU attention of one decode row over 4096 cached tokens (32 heads, 8 KV heads, head_dim 128) with an f32 and a
     * GQ4 cache, alternating, on the backend's own threads: what decompressing each chunk in attention costs.
     */
    private static void attention(int runs) {
        int ctx = 4096, heads = 32, kvHeads = 8, hd = 128, bs = 16;
        try (CpuBackend b = new CpuBackend()) {
            int[] slots = new int[ctx], table = new int[ctx / bs];
            for (int i = 0; i < ctx; i++) slots[i] = i;
            for (int i = 0; i < table.length; i++) table[i] = i;
            Activation k = b.allocate(ctx, kvHeads * hd), v = b.allocate(ctx, kvHeads * hd), q = b.allocate(1, heads * hd), out = b.allocate(1, heads * hd);
            SplittableRandom rnd = new SplittableRandom(2);
            for (Activation a : new Activation[] {k, v, q}) {
                MemorySegment m = ((dev.tandem.core.backend.cpu.CpuActivation) a).segment();
                for (long i = 0; i < m.byteSize() / 4; i++) m.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble(-1, 1));
            }
            KvLayout layout = new KvLayout(1, ctx / bs, bs, kvHeads, hd);
            KvStorage f32 = b.allocateKv(layout), gq4 = b.allocateKv(layout.withFormat(KvLayout.Format.GQ4));
            b.writeKv(f32, 0, k, v, slots);
            b.writeKv(gq4, 0, k, v, slots);
            AttentionBatch batch = new AttentionBatch(List.of(new AttentionBatch.Seq(0, 1, ctx, table)), heads, kvHeads, hd, (float) (1 / Math.sqrt(hd)));
            double bestF = Double.MAX_VALUE, bestQ = Double.MAX_VALUE;
            for (int r = 0; r < 4 * runs; r++) {
                bestF = Math.min(bestF, best(1, () -> b.attention(q, f32, 0, batch, out)));
                bestQ = Math.min(bestQ, best(1, () -> b.attention(q, gq4, 0, batch, out)));
            }
            System.out.printf("decode attention over %d tokens (%d/%d heads, head_dim %d, %d threads): f32 cache %.3f ms (%d MiB), "
                            + "GQ4 cache %.3f ms (%d MiB): %.2fx the time, %.2fx less memory%n", ctx, heads, kvHeads, hd, b.pool().threads(),
                    bestF * 1e3, 2L * ctx * layout.slotBytes() >> 20, bestQ * 1e3, 2L * ctx * layout.withFormat(KvLayout.Format.GQ4).slotBytes() >> 20,
                    bestQ / bestF, (double) layout.slotBytes() / layout.withFormat(KvLayout.Format.GQ4).slotBytes());
        }
    }

    private static void bench(Arena arena, String name, int dim, int runs, long... shape) {
        Gq4Layout l = Gq4Layout.of(dim, shape);
        long n = l.elements();
        MemorySegment src = arena.allocate(4 * n, 64);
        SplittableRandom rnd = new SplittableRandom(1);
        for (long i = 0; i < n; i++) src.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble(-1, 1));
        MemorySegment packed = arena.allocate(l.packedBytes(), 64);
        double quant = best(runs, () -> GroupQuant4.quantize(src, DType.F32, l, packed, 0));
        GroupQuant4.Packed p = new GroupQuant4.Packed(l, packed);
        for (DType type : new DType[] {DType.F32, DType.BF16}) {
            long bytes = n * (type == DType.F32 ? 4 : 2);
            MemorySegment dst = arena.allocate(bytes, 64);
            double v = best(runs, () -> GroupQuant4.dequantizeRows(p, 0, (int) l.rows(), dst, 0, type));
            double s = type == DType.F32 ? best(Math.max(3, runs / 3), () -> scalar(p, dst)) : Double.NaN;
            System.out.printf("%-34s %-6s %10.2f %10.2f %10.2f%n", name, type, v * 1e3, s * 1e3, bytes / v / 1e9);
        }
        System.out.printf("%-34s %-6s %10.2f %10s %10.2f (GB/s read)%n", name, "quant", quant * 1e3, "", 4 * n / quant / 1e9);
        // The range choices beyond min / max: the KV cache's refits, the weights' search (in parallel over columns).
        GroupQuant4.Range range = l.groupedAlongRows() ? GroupQuant4.KV_RANGE : WeightCompression.DEFAULT_RANGE;
        double chosen = best(Math.max(1, runs / 5), () -> GroupQuant4.quantize(src, DType.F32, l, packed, 0, range));
        System.out.printf("%-34s %-6s %10.2f %10s %10.2f (GB/s read; %.1fx min / max's time; %s)%n", name, "quant", chosen * 1e3, "",
                4 * n / chosen / 1e9, chosen / quant, range + (l.groupedAlongRows() ? "" : ", " + java.util.concurrent.ForkJoinPool.getCommonPoolParallelism() + " pool threads"));
    }

    /** Element by element from the layout: the reference the vector path is measured against. */
    private static void scalar(GroupQuant4.Packed p, MemorySegment dst) {
        Gq4Layout l = p.layout();
        long inner = l.inner(), len = l.len();
        for (long o = 0; o < l.outer(); o++) {
            long rec = o * l.recordBytes();
            for (long j = 0; j < len; j++) {
                for (long i = 0; i < inner; i++) {
                    long e = j * inner + i, param = (j / 64) * inner + i;
                    float mn = Float.float16ToFloat(p.data().get(dev.tandem.core.tensor.Codec.I16, rec + l.minsOffset() + 2 * param));
                    float sc = Float.float16ToFloat(p.data().get(dev.tandem.core.tensor.Codec.I16, rec + l.scalesOffset() + 2 * param));
                    dst.set(ValueLayout.JAVA_FLOAT_UNALIGNED, 4 * ((o * len + j) * inner + i), Math.fma(Gq4Dequantizer.nibble(p.data(), rec, e), sc, mn));
                }
            }
        }
    }

    private static double best(int runs, Runnable r) {
        double best = Double.MAX_VALUE;
        for (int i = 0; i < runs; i++) {
            long t = System.nanoTime();
            r.run();
            best = Math.min(best, (System.nanoTime() - t) / 1e9);
        }
        return best;
    }
}
