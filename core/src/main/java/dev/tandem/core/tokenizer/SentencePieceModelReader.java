package dev.tandem.core.tokenizer;

import dev.tandem.core.format.ModelFormatException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads a SentencePiece tokenizer.model (the ModelProto of sentencepiece_model.proto) from the wire format:
 * field 1 the pieces {piece, score, type}, field 2 the trainer spec (model type, unk / bos / eos ids), field 3
 * the normalizer spec (add_dummy_prefix). Everything else is skipped.
 */
final class SentencePieceModelReader {
    private static final int MODEL_PIECES = 1, MODEL_TRAINER_SPEC = 2, MODEL_NORMALIZER_SPEC = 3;
    private static final int PIECE_PIECE = 1, PIECE_SCORE = 2, PIECE_TYPE = 3;
    private static final int TRAINER_MODEL_TYPE = 3, TRAINER_UNK_ID = 40, TRAINER_BOS_ID = 41, TRAINER_EOS_ID = 42;
    private static final int NORMALIZER_ADD_DUMMY_PREFIX = 3;
    private static final int MODEL_TYPE_BPE = 2;
    private static final String[] MODEL_TYPE_NAMES = {"?", "UNIGRAM", "BPE", "WORD", "CHAR"};

    private SentencePieceModelReader() {}

    static SentencePieceTokenizer read(Path file) throws IOException {
        return parse(file.getFileName().toString(), Files.readAllBytes(file));
    }

    static SentencePieceTokenizer parse(String name, byte[] data) {
        List<String> pieces = new ArrayList<>();
        List<Float> scores = new ArrayList<>();
        List<TokenType> types = new ArrayList<>();
        int unk = 0, bos = 1, eos = 2; // the proto's defaults
        boolean addDummyPrefix = true;
        ProtoReader model = new ProtoReader(name, data, 0, data.length);
        while (model.next()) {
            switch (model.field()) {
                case MODEL_PIECES -> {
                    ProtoReader p = model.message();
                    String piece = null;
                    float score = 0;
                    int type = TokenType.NORMAL.code;
                    while (p.next()) {
                        switch (p.field()) {
                            case PIECE_PIECE -> piece = p.string();
                            case PIECE_SCORE -> score = p.float32();
                            case PIECE_TYPE -> type = p.int32();
                            default -> p.skip();
                        }
                    }
                    int i = pieces.size();
                    if (piece == null) throw p.bad("piece " + i + " has no piece string");
                    TokenType t = TokenType.ofCode(type);
                    if (t == null) throw p.bad("piece " + i + " ('" + piece + "') has unknown type " + type);
                    pieces.add(piece);
                    scores.add(score);
                    types.add(t);
                }
                case MODEL_TRAINER_SPEC -> {
                    ProtoReader t = model.message();
                    while (t.next()) {
                        switch (t.field()) {
                            case TRAINER_MODEL_TYPE -> {
                                int type = t.int32();
                                if (type != MODEL_TYPE_BPE) {
                                    String typeName = type > 0 && type < MODEL_TYPE_NAMES.length
                                            ? MODEL_TYPE_NAMES[type] : String.valueOf(type);
                                    throw t.bad("trainer_spec.model_type is " + typeName + "; only BPE is supported");
                                }
                            }
                            case TRAINER_UNK_ID -> unk = t.int32();
                            case TRAINER_BOS_ID -> bos = t.int32();
                            case TRAINER_EOS_ID -> eos = t.int32();
                            default -> t.skip();
                        }
                    }
                }
                case MODEL_NORMALIZER_SPEC -> {
                    ProtoReader ns = model.message();
                    while (ns.next()) {
                        if (ns.field() == NORMALIZER_ADD_DUMMY_PREFIX) addDummyPrefix = ns.bool();
                        else ns.skip();
                    }
                }
                default -> model.skip();
            }
        }
        int n = pieces.size();
        if (n == 0) throw new ModelFormatException(name + ": no pieces (not a SentencePiece model?)");
        checkId(name, "unk_id", unk, n);
        checkId(name, "bos_id", bos, n);
        checkId(name, "eos_id", eos, n);
        float[] s = new float[n];
        for (int i = 0; i < n; i++) s[i] = scores.get(i);
        return new SentencePieceTokenizer(name, pieces.toArray(String[]::new), s, types.toArray(TokenType[]::new),
                unk, bos, eos, true, addDummyPrefix);
    }

    private static void checkId(String name, String field, int id, int n) {
        if (id < -1 || id >= n) {
            throw new ModelFormatException(name + ": trainer_spec." + field + " " + id + " is outside the " + n
                    + " pieces");
        }
    }
}
