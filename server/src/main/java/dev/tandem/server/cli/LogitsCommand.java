package dev.tandem.server.cli;

import dev.tandem.core.backend.Activation;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.KvLayout;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.kv.BlockPool;
import dev.tandem.core.kv.BlockTable;
import dev.tandem.core.model.DecoderModel;
import dev.tandem.core.model.Model;
import dev.tandem.core.model.ModelConfig;
import dev.tandem.core.model.StepBatch;

import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * `tandem logits --model PATH (--ids 0,5,7 | --prompt TEXT) --out FILE`: runs the sequence as one prompt and
 * writes the logits of every position (rows x vocab, f32 little-endian), for comparing against another
 * implementation on the same weights.
 */
final class LogitsCommand {
    static final Map<String, String> VALUED = Args.options(
            "model", "model folder or file",
            "ids", "comma-separated token ids",
            "prompt", "text to tokenize instead of --ids",
            "out", "file for rows x vocab f32 logits",
            BackendOptions.OPTIONS[0], BackendOptions.OPTIONS[1], BackendOptions.OPTIONS[2], BackendOptions.OPTIONS[3],
            BackendOptions.OPTIONS[4], BackendOptions.OPTIONS[5]);
    static final Map<String, String> FLAGS = Args.options("help", "show options");

    int run(String[] argv) throws IOException {
        Args args = new Args("logits", argv, VALUED, FLAGS);
        if (args.flag("help")) return Help.print("logits --model PATH (--ids 0,5,7 | --prompt TEXT) --out FILE", VALUED, FLAGS);
        Path out = Path.of(args.required("out"));
        try (Backend backend = BackendOptions.open(args); Model model = ModelLoader.load(Path.of(args.required("model")), null)) {
            int[] ids;
            if (args.has("ids")) {
                try {
                    ids = Arrays.stream(args.string("ids", "").split(",")).map(String::trim).mapToInt(Integer::parseInt).toArray();
                } catch (NumberFormatException e) {
                    throw args.usage("--ids expects comma-separated integers, got '" + args.string("ids", "") + "'");
                }
            } else {
                ids = model.tokenizer().encode(args.required("prompt"), true);
            }
            ModelConfig c = model.config();
            int n = ids.length;
            if (n == 0 || n > c.contextLength()) throw args.usage("need 1.." + c.contextLength() + " tokens, got " + n);
            DecoderModel decoder = DecoderModel.create(c, model.weights(), backend, n, n);
            int blocks = (n + KvLayout.DEFAULT_BLOCK_SIZE - 1) / KvLayout.DEFAULT_BLOCK_SIZE;
            var kv = backend.allocateKv(new KvLayout(c.layers(), blocks, KvLayout.DEFAULT_BLOCK_SIZE, c.kvHeads(), c.headDim()));
            BlockTable table = new BlockTable(new BlockPool(blocks, KvLayout.DEFAULT_BLOCK_SIZE));
            table.ensureCapacity(n);
            int[] rows = new int[n];
            for (int i = 0; i < n; i++) rows[i] = i;
            Activation logits = decoder.forward(StepBatch.ofSequence(ids, 0, n, table, rows), kv);
            float[] row = new float[c.vocabSize()];
            ByteBuffer buf = ByteBuffer.allocate(row.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            try (DataOutputStream o = new DataOutputStream(Files.newOutputStream(out))) {
                for (int i = 0; i < n; i++) {
                    backend.read(logits, i, row);
                    buf.clear();
                    buf.asFloatBuffer().put(row);
                    o.write(buf.array());
                }
            }
            System.err.printf("logits: %d positions x %d to %s%n", n, c.vocabSize(), out);
        }
        return 0;
    }
}
