package dev.tandem.engine;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.core.tokenizer.StreamDecoder;
import dev.tandem.core.tokenizer.Tokenizer;

import java.nio.file.Path;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.function.Consumer;

/**
 * Tandem embedded in a Java application: load a model, then generate text, blocking or as a stream, from any
 * number of threads at once (requests are batched together by the engine). The HTTP server is built on it.
 *
 * <pre>{@code
 * try (Tandem tandem = Tandem.open(Path.of("models/gutenberg-stories-llama-25m"))) {
 *     System.out.println(tandem.generate("Once upon a time", Tandem.Options.greedy(32)).text());
 *     tandem.stream("The little dog", Tandem.Options.sampled(64, 0.8f, 42), System.out::print);
 * }
 * }</pre>
 */
public final class Tandem implements AutoCloseable {
    private final Model model;
    private final Backend backend;
    private final Engine engine;

    private Tandem(Model model, Backend backend, EngineConfig config) {
        this.model = model;
        this.backend = backend;
        this.engine = new Engine(model, backend, config);
    }

    /** Loads a model (Hugging Face folder, GGUF or llama2.c file) on the CPU backend with default limits. */
    public static Tandem open(Path modelPath) { return open(modelPath, EngineConfig.DEFAULT, Runtime.getRuntime().availableProcessors()); }

    public static Tandem open(Path modelPath, EngineConfig config, int threads) {
        Model model = ModelLoader.load(modelPath, null);
        Backend backend = new CpuBackend(threads);
        try {
            return new Tandem(model, backend, config);
        } catch (RuntimeException e) {
            backend.close();
            model.close();
            throw e;
        }
    }

    /** How to generate: token limit, sampling, whether to stop at EOS. */
    public record Options(int maxTokens, SamplingParams sampling, boolean ignoreEos) {
        public static Options greedy(int maxTokens) { return new Options(maxTokens, SamplingParams.GREEDY, false); }

        public static Options sampled(int maxTokens, float temperature, long seed) {
            return new Options(maxTokens, new SamplingParams(temperature, 0, 1f, 0f, 1f, 64, 0f, 0f, seed), false);
        }
    }

    /** A finished generation. */
    public record Result(String text, int[] tokens, FinishReason finishReason, int promptTokens) {}

    public Engine engine() { return engine; }

    public Tokenizer tokenizer() { return model.tokenizer(); }

    public Model model() { return model; }

    /** Generates to the end and returns the text (blocking). */
    public Result generate(String prompt, Options options) {
        return generateAsync(prompt, options).join();
    }

    /** Generates in the background; the future completes with the whole result. */
    public CompletableFuture<Result> generateAsync(String prompt, Options options) {
        CompletableFuture<Result> done = new CompletableFuture<>();
        int[] ids = tokenizer().encode(prompt, true);
        StringBuilder text = new StringBuilder();
        StreamDecoder decoder = new StreamDecoder(tokenizer()).after(ids[ids.length - 1]);
        java.util.List<Integer> tokens = new java.util.ArrayList<>();
        engine.submit(new GenerationRequest(ids, options.maxTokens(), options.sampling(), options.ignoreEos(), -1), new TokenListener() {
            public void onToken(TokenEvent t) {
                tokens.add(t.token());
                text.append(decoder.next(t.token()));
            }

            public void onFinish(FinishReason reason, int promptTokens, int generatedTokens, int cached) {
                text.append(decoder.flush());
                done.complete(new Result(text.toString(), tokens.stream().mapToInt(Integer::intValue).toArray(), reason, promptTokens));
            }

            public void onError(Throwable error) { done.completeExceptionally(error); }
        });
        return done;
    }

    /** Generates and hands each piece of text to {@code sink} as it is produced (on a generation thread); blocks until done. */
    public Result stream(String prompt, Options options, Consumer<String> sink) {
        Iterator<String> it = streamIterator(prompt, options);
        while (it.hasNext()) sink.accept(it.next());
        return ((PieceIterator) it).result;
    }

    /** The text as an iterator of pieces, produced while the caller consumes it. */
    public Iterator<String> streamIterator(String prompt, Options options) {
        PieceIterator it = new PieceIterator();
        int[] ids = tokenizer().encode(prompt, true);
        StreamDecoder decoder = new StreamDecoder(tokenizer()).after(ids[ids.length - 1]);
        java.util.List<Integer> tokens = new java.util.ArrayList<>();
        StringBuilder all = new StringBuilder();
        engine.submit(new GenerationRequest(ids, options.maxTokens(), options.sampling(), options.ignoreEos(), -1), new TokenListener() {
            public void onToken(TokenEvent t) {
                tokens.add(t.token());
                String s = decoder.next(t.token());
                all.append(s);
                if (!s.isEmpty()) it.queue.add(s);
            }

            public void onFinish(FinishReason reason, int promptTokens, int generatedTokens, int cached) {
                String s = decoder.flush();
                all.append(s);
                if (!s.isEmpty()) it.queue.add(s);
                it.result = new Result(all.toString(), tokens.stream().mapToInt(Integer::intValue).toArray(), reason, promptTokens);
                it.queue.add(PieceIterator.END);
            }

            public void onError(Throwable error) {
                it.error = error;
                it.queue.add(PieceIterator.END);
            }
        });
        return it;
    }

    private static final class PieceIterator implements Iterator<String> {
        static final String END = new String("<end>");
        final LinkedBlockingQueue<String> queue = new LinkedBlockingQueue<>();
        volatile Result result;
        volatile Throwable error;
        private String next;

        public boolean hasNext() {
            if (next == null) {
                try {
                    next = queue.take();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while waiting for tokens", e);
                }
            }
            if (next == END) {
                if (error != null) throw new IllegalStateException("generation failed: " + error.getMessage(), error);
                return false;
            }
            return true;
        }

        public String next() {
            if (!hasNext()) throw new NoSuchElementException();
            String s = next;
            next = null;
            return s;
        }
    }

    @Override
    public void close() {
        engine.close();
        backend.close();
        model.close();
    }
}
