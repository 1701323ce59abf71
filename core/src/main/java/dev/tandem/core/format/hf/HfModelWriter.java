package dev.tandem.core.format.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tandem.core.format.WeightBinder;
import dev.tandem.core.format.WeightBinder.Part;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.tensor.VectorCodec;
import dev.tandem.core.tensor.DType;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Writes the weights of a Llama or OPT model as a Hugging Face folder: model.safetensors, or shards
 * model-0000i-of-0000n.safetensors plus model.safetensors.index.json when they pass {@code maxShardBytes}
 * (split as transformers' save_pretrained splits: a tensor goes to the next shard when it would overflow this one).
 *
 * <p>Values come from a {@link RowSource} in blocks of rows; threads take blocks of a few MiB through an atomic
 * counter, encode them in their own off-heap buffer and write them at their place in the file with positional
 * writes, so no tensor is ever whole in memory and the bytes do not depend on the thread count.
 */
public final class HfModelWriter {
    /** transformers' default max_shard_size, "5GB". */
    public static final long HF_SHARD_BYTES = 5_000_000_000L;
    private static final long BLOCK_BYTES = 4 << 20;

    private HfModelWriter() {}

    /** Where the values of one tensor come from (rows in [out, in] order, Hugging Face names). */
    public interface RowSource {
        /** Fills dst[0, count * cols) with rows [first, first + count) of the named tensor. */
        void rows(String name, long first, int count, int cols, float[] dst);
    }

    /**
     * The safetensors files written, their total size in bytes, and the time all threads together spent
     * producing values (source + encoding) and in positional writes, to tell compute from I/O.
     */
    public record Written(List<Path> files, long bytes, long computeNanos, long writeNanos) {}

    private record TensorSpec(String name, int rows, int cols) {
        long values() { return (long) rows * cols; }

        /** Norm weights and biases are stored 1-D, as transformers saves them. */
        boolean vector() { return rows == 1 && (name.endsWith("norm.weight") || name.endsWith(".bias")); }
    }

    private record Placed(TensorSpec spec, FileChannel channel, long offset) {}

    private record Block(Placed tensor, int first, int count) {}

    public static Written write(Path dir, ModelConfig c, DType type, RowSource source, long maxShardBytes, int threads) throws IOException {
        if (type != DType.F32 && type != DType.F16 && type != DType.BF16) {
            throw new IllegalArgumentException("safetensors holds F32, F16 or BF16 here, not " + type);
        }
        Files.createDirectories(dir);
        removeOldWeights(dir);
        List<List<TensorSpec>> shards = plan(tensors(c), type, maxShardBytes);
        List<Path> files = new ArrayList<>();
        List<FileChannel> channels = new ArrayList<>();
        List<Placed> placed = new ArrayList<>();
        ObjectNode weightMap = new ObjectMapper().createObjectNode();
        long total = 0;
        long[] times;
        try {
            for (int s = 0; s < shards.size(); s++) {
                String file = shards.size() == 1 ? "model.safetensors"
                        : String.format("model-%05d-of-%05d.safetensors", s + 1, shards.size());
                Path p = dir.resolve(file);
                FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE);
                files.add(p);
                channels.add(ch);
                long dataStart = writeHeader(ch, shards.get(s), type);
                long off = 0;
                for (TensorSpec t : shards.get(s)) {
                    placed.add(new Placed(t, ch, dataStart + off));
                    off += type.bytesFor(t.values());
                    weightMap.put(t.name(), file);
                }
                total += off;
            }
            times = fill(placed, type, source, threads);
        } finally {
            for (FileChannel ch : channels) ch.close();
        }
        if (shards.size() > 1) {
            ObjectNode index = new ObjectMapper().createObjectNode();
            index.putObject("metadata").put("total_size", total);
            index.set("weight_map", weightMap);
            Files.writeString(dir.resolve("model.safetensors.index.json"), index.toPrettyString());
        }
        return new Written(files, total, times[0], times[1]);
    }

    /** The tensors of a Llama (or OPT) model in the order transformers lists them. */
    private static List<TensorSpec> tensors(ModelConfig c) {
        List<TensorSpec> out = new ArrayList<>();
        if (c.isOpt()) {
            for (OptLayout.Entry e : OptLayout.CAUSAL_LM.tensors(c)) {
                long[] s = e.shape();
                out.add(new TensorSpec(e.name(), s.length == 1 ? 1 : Math.toIntExact(s[0]), Math.toIntExact(s[s.length - 1])));
            }
            return out;
        }
        WeightBinder.Names n = WeightBinder.HUGGING_FACE;
        out.add(new TensorSpec(n.embedding(), c.vocabSize(), c.dim()));
        for (int l = 0; l < c.layers(); l++) {
            out.add(new TensorSpec(n.layer(l, Part.WQ), c.qDim(), c.dim()));
            out.add(new TensorSpec(n.layer(l, Part.WK), c.kvDim(), c.dim()));
            out.add(new TensorSpec(n.layer(l, Part.WV), c.kvDim(), c.dim()));
            out.add(new TensorSpec(n.layer(l, Part.WO), c.dim(), c.qDim()));
            out.add(new TensorSpec(n.layer(l, Part.GATE), c.hiddenDim(), c.dim()));
            out.add(new TensorSpec(n.layer(l, Part.UP), c.hiddenDim(), c.dim()));
            out.add(new TensorSpec(n.layer(l, Part.DOWN), c.dim(), c.hiddenDim()));
            out.add(new TensorSpec(n.layer(l, Part.ATTN_NORM), 1, c.dim()));
            out.add(new TensorSpec(n.layer(l, Part.FFN_NORM), 1, c.dim()));
        }
        out.add(new TensorSpec(n.finalNorm(), 1, c.dim()));
        if (!c.tiedEmbeddings()) out.add(new TensorSpec(n.output(), c.vocabSize(), c.dim()));
        return out;
    }

    private static List<List<TensorSpec>> plan(List<TensorSpec> tensors, DType type, long maxShardBytes) {
        List<List<TensorSpec>> shards = new ArrayList<>();
        List<TensorSpec> current = new ArrayList<>();
        long size = 0;
        for (TensorSpec t : tensors) {
            long bytes = type.bytesFor(t.values());
            if (!current.isEmpty() && size + bytes > maxShardBytes) {
                shards.add(current);
                current = new ArrayList<>();
                size = 0;
            }
            current.add(t);
            size += bytes;
        }
        shards.add(current);
        return shards;
    }

    /** The 8-byte header length, then the JSON header padded with spaces so that the data starts 8-aligned. */
    private static long writeHeader(FileChannel ch, List<TensorSpec> tensors, DType type) throws IOException {
        ObjectNode header = new ObjectMapper().createObjectNode();
        header.putObject("__metadata__").put("format", "pt");
        long off = 0;
        for (TensorSpec t : tensors) {
            ObjectNode e = header.putObject(t.name());
            e.put("dtype", type.name());
            var shape = e.putArray("shape");
            if (!t.vector()) shape.add(t.rows());
            shape.add(t.cols());
            long bytes = type.bytesFor(t.values());
            e.putArray("data_offsets").add(off).add(off + bytes);
            off += bytes;
        }
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) & ~7;
        ByteBuffer buf = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(padded).put(json);
        while (buf.hasRemaining()) buf.put((byte) ' ');
        buf.flip();
        long pos = 0;
        while (buf.hasRemaining()) pos += ch.write(buf, pos);
        return 8 + padded;
    }

    /** Returns {compute, write} nanoseconds summed over the threads. */
    private static long[] fill(List<Placed> tensors, DType type, RowSource source, int threads) throws IOException {
        List<Block> blocks = new ArrayList<>();
        long maxValues = 0;
        for (Placed p : tensors) {
            int cols = p.spec().cols();
            int rowsPerBlock = (int) Math.max(1, BLOCK_BYTES / type.bytesFor(cols));
            for (int first = 0; first < p.spec().rows(); first += rowsPerBlock) {
                int count = Math.min(rowsPerBlock, p.spec().rows() - first);
                blocks.add(new Block(p, first, count));
                maxValues = Math.max(maxValues, (long) count * cols);
            }
        }
        int scratch = Math.toIntExact(maxValues);
        AtomicInteger next = new AtomicInteger();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        AtomicLong computeNanos = new AtomicLong(), writeNanos = new AtomicLong();
        Runnable worker = () -> {
            float[] values = new float[scratch];
            ByteBuffer buf = ByteBuffer.allocateDirect(Math.toIntExact(type.bytesFor(scratch))).order(ByteOrder.LITTLE_ENDIAN);
            MemorySegment seg = MemorySegment.ofBuffer(buf);
            long compute = 0, write = 0;
            try {
                for (int i = next.getAndIncrement(); i < blocks.size() && failure.get() == null; i = next.getAndIncrement()) {
                    Block b = blocks.get(i);
                    TensorSpec t = b.tensor().spec();
                    int n = b.count() * t.cols();
                    long t0 = System.nanoTime();
                    source.rows(t.name(), b.first(), b.count(), t.cols(), values);
                    long bytes = VectorCodec.encode(type, values, 0, n, seg, 0);
                    long t1 = System.nanoTime();
                    buf.clear().limit((int) bytes);
                    long pos = b.tensor().offset() + type.bytesFor((long) b.first() * t.cols());
                    while (buf.hasRemaining()) b.tensor().channel().write(buf, pos + buf.position());
                    compute += t1 - t0;
                    write += System.nanoTime() - t1;
                }
            } catch (Throwable e) {
                failure.compareAndSet(null, e);
            }
            computeNanos.addAndGet(compute);
            writeNanos.addAndGet(write);
        };
        List<Thread> pool = new ArrayList<>();
        for (int i = 0; i < Math.max(1, threads); i++) pool.add(Thread.ofPlatform().name("hf-writer-" + i).start(worker));
        for (Thread th : pool) {
            try {
                th.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while writing", e);
            }
        }
        Throwable f = failure.get();
        if (f instanceof IOException io) throw io;
        if (f instanceof UncheckedIOException u) throw u.getCause();
        if (f instanceof RuntimeException r) throw r;
        if (f instanceof Error err) throw err;
        return new long[] {computeNanos.get(), writeNanos.get()};
    }

    /** Old shards or an old index would be picked up beside the new weights. */
    private static void removeOldWeights(Path dir) throws IOException {
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dir, "model*.safetensors{,.index.json}")) {
            for (Path p : s) Files.delete(p);
        }
    }

    private static String torchDtype(DType type) {
        return switch (type) {
            case BF16 -> "bfloat16";
            case F16 -> "float16";
            default -> "float32";
        };
    }

    /**
     * A transformers config.json for an OPT model (OPTForCausalLM, pre-LayerNorm, ReLU, tied output), with the fields
     * of facebook/opt-* configs.
     */
    public static ObjectNode optConfigJson(ModelConfig c, DType type) {
        if (!c.isOpt()) throw new IllegalArgumentException("an OPT config.json for a " + c.architecture() + " configuration");
        ObjectNode o = new ObjectMapper().createObjectNode();
        o.putArray("architectures").add("OPTForCausalLM");
        o.put("model_type", "opt");
        o.put("activation_dropout", 0.0);
        o.put("activation_function", "relu");
        o.put("attention_dropout", 0.0);
        o.put("bos_token_id", c.bos());
        o.put("do_layer_norm_before", true);
        o.put("dropout", 0.0);
        o.put("enable_bias", true);
        o.put("eos_token_id", c.eos());
        o.put("ffn_dim", c.hiddenDim());
        o.put("hidden_size", c.dim());
        o.put("init_std", 0.02);
        o.put("layer_norm_elementwise_affine", true);
        o.put("layerdrop", 0.0);
        o.put("max_position_embeddings", c.contextLength());
        o.put("num_attention_heads", c.heads());
        o.put("num_hidden_layers", c.layers());
        o.put("pad_token_id", 1);
        o.put("tie_word_embeddings", true);
        o.put("torch_dtype", torchDtype(type)); // transformers 4.x
        o.put("dtype", torchDtype(type));       // transformers 5.x
        o.put("use_cache", true);
        o.put("vocab_size", c.vocabSize());
        o.put("word_embed_proj_dim", c.dim());
        return o;
    }

    /** A transformers config.json for this model (LlamaForCausalLM); {@code ropeScaling} may be null. */
    public static ObjectNode configJson(ModelConfig c, DType type, JsonNode ropeScaling) {
        if (!c.architecture().equals("llama")) {
            throw new IllegalArgumentException("Hugging Face output is written as LlamaForCausalLM; this configuration is " + c.architecture());
        }
        String dtype = torchDtype(type);
        ObjectNode o = new ObjectMapper().createObjectNode();
        o.putArray("architectures").add("LlamaForCausalLM");
        o.put("model_type", "llama");
        o.put("attention_bias", false);
        o.put("attention_dropout", 0.0);
        o.put("bos_token_id", c.bos());
        o.put("eos_token_id", c.eos());
        o.put("head_dim", c.headDim());
        o.put("hidden_act", "silu");
        o.put("hidden_size", c.dim());
        o.put("initializer_range", 0.02);
        o.put("intermediate_size", c.hiddenDim());
        o.put("max_position_embeddings", c.contextLength());
        o.put("mlp_bias", false);
        o.put("num_attention_heads", c.heads());
        o.put("num_hidden_layers", c.layers());
        o.put("num_key_value_heads", c.kvHeads());
        o.put("pretraining_tp", 1);
        o.put("rms_norm_eps", Double.parseDouble(Float.toString(c.normEps()))); // 1e-5, not 9.99999974e-6
        if (ropeScaling != null && !ropeScaling.isNull() && !ropeScaling.isMissingNode()) o.set("rope_scaling", ropeScaling);
        else o.putNull("rope_scaling");
        o.put("rope_theta", c.ropeTheta());
        o.put("tie_word_embeddings", c.tiedEmbeddings());
        o.put("torch_dtype", dtype); // transformers 4.x
        o.put("dtype", dtype);       // transformers 5.x
        o.put("use_cache", true);
        o.put("vocab_size", c.vocabSize());
        return o;
    }
}
