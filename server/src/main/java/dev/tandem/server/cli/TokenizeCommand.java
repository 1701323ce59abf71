package dev.tandem.server.cli;

import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/** `tandem tokenize --model PATH TEXT`: prints the ids the model's tokenizer gives the text (with BOS). */
final class TokenizeCommand {
    static final Map<String, String> VALUED = Args.options(
            "model", "model folder or file whose tokenizer to use",
            "tokenizer", "tokenizer file instead of the model's own");
    static final Map<String, String> FLAGS = Args.options(
            "no-bos", "do not add the special tokens the tokenizer adds by itself",
            "pieces", "print one 'id<TAB>piece' line per token instead of the id list",
            "help", "show options");

    int run(String[] argv) {
        Args args = new Args("tokenize", argv, VALUED, FLAGS);
        if (args.flag("help")) return Help.print("tokenize --model PATH TEXT", VALUED, FLAGS);
        if (args.positional().isEmpty()) throw args.usage("give the text to tokenize after the options");
        String text = String.join(" ", args.positional());
        Path tokenizer = args.has("tokenizer") ? Path.of(args.string("tokenizer", null)) : null;
        try (Model model = ModelLoader.load(Path.of(args.required("model")), tokenizer)) {
            int[] ids = model.tokenizer().encode(text, !args.flag("no-bos"));
            if (args.flag("pieces")) {
                for (int id : ids) System.out.println(id + "\t" + model.tokenizer().piece(id));
            } else {
                System.out.println(Arrays.toString(ids));
            }
        }
        return 0;
    }
}
