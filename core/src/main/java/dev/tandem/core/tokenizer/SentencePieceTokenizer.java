package dev.tandem.core.tokenizer;

import dev.tandem.core.format.ModelFormatException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * SentencePiece-style BPE with byte fallback, encoding exactly as llama2.c's run.c does: a dummy-prefix space,
 * one symbol per codepoint (or one {@code <0xXX>} token per UTF-8 byte when the codepoint is not a piece), then
 * repeatedly the adjacent pair whose concatenation is a piece with the highest score, leftmost on ties.
 *
 * <p>Pieces are normalised so that U+2581 ("▁", SentencePiece's space) is a plain space; tokenizer.bin files
 * already store spaces, so both formats look up the same strings. Only normal and user-defined pieces take part
 * in lookups and merges: control, unknown, unused and byte pieces are never produced from text.
 */
public final class SentencePieceTokenizer implements Tokenizer {
    private static final String VOCABULARY = "tokenizer vocabulary";
    static final char SPACE_MARK = '\u2581';

    private final String[] pieces;
    private final String[] normalized;
    private final byte[][] bytes;
    private final TokenType[] types;
    private final float[] scores;
    private final int[] priority; // dense rank of the score, highest score first
    private final Map<String, Integer> lookup = new HashMap<>();
    private final int[] byteIds = new int[256];
    private final int unk, bos, eos;
    private final boolean addBos, addDummyPrefix;
    private final MergeRule rule = this::mergePair;

    /** {@code source} names the file (or "tokenizer vocabulary") in error messages. */
    SentencePieceTokenizer(String source, String[] pieces, float[] scores, TokenType[] types, int unk, int bos,
                           int eos, boolean addBos, boolean addDummyPrefix) {
        int n = pieces.length;
        if (scores.length != n || types.length != n) {
            throw new ModelFormatException(source + ": " + n + " pieces but " + scores.length
                    + " scores and " + types.length + " types");
        }
        checkId(source, "unk", unk, n);
        checkId(source, "bos", bos, n);
        checkId(source, "eos", eos, n);
        this.pieces = pieces.clone();
        this.types = types.clone();
        this.scores = scores.clone();
        this.unk = unk;
        this.bos = bos;
        this.eos = eos;
        this.addBos = addBos;
        this.addDummyPrefix = addDummyPrefix;
        normalized = new String[n];
        bytes = new byte[n][];
        Arrays.fill(byteIds, -1);
        for (int i = 0; i < n; i++) {
            if (pieces[i] == null) throw new ModelFormatException(source + ": token " + i + " has no piece");
            if (types[i] == null) throw new ModelFormatException(source + ": token " + i + " has no type");
            normalized[i] = pieces[i].replace(SPACE_MARK, ' ');
            if (types[i] == TokenType.BYTE) {
                int b = byteValue(pieces[i]);
                if (b < 0) {
                    throw new ModelFormatException(source + ": token " + i + " has type BYTE but its piece '"
                            + pieces[i] + "' is not of the form <0xXX>");
                }
                bytes[i] = new byte[] {(byte) b};
                if (byteIds[b] < 0) byteIds[b] = i;
            } else {
                bytes[i] = normalized[i].getBytes(StandardCharsets.UTF_8);
                if (mergeable(i) && !normalized[i].isEmpty()) lookup.putIfAbsent(normalized[i], i);
            }
        }
        priority = denseRanks(scores);
    }

    /** A llama2.c tokenizer.bin: id 0 unk, 1 BOS, 2 EOS, pieces {@code <0xXX>} are bytes; reads to the end. */
    public static SentencePieceTokenizer fromLlama2cBin(Path file) throws IOException {
        return Llama2cTokenizerReader.read(file, -1);
    }

    /** A llama2.c tokenizer.bin holding (at least) {@code vocabSize} tokens, as the checkpoint header says. */
    public static SentencePieceTokenizer fromLlama2cBin(Path file, int vocabSize) throws IOException {
        return Llama2cTokenizerReader.read(file, vocabSize);
    }

    /** A SentencePiece tokenizer.model (ModelProto) with a BPE model. */
    public static SentencePieceTokenizer fromModelProto(Path file) throws IOException {
        return SentencePieceModelReader.read(file);
    }

    /**
     * A vocabulary as GGUF stores it for {@code tokenizer.ggml.model == "llama"}. {@code types} holds the
     * {@link TokenType} codes and may be null (then byte pieces are recognised by their {@code <0xXX>} form and
     * BOS / EOS are control tokens); {@code bos} / {@code eos} may be -1.
     */
    public static SentencePieceTokenizer fromVocabulary(String[] pieces, float[] scores, int[] types, int bos, int eos,
                                                        boolean addBos) {
        TokenType[] t = new TokenType[pieces.length];
        int unk = -1;
        for (int i = 0; i < pieces.length; i++) {
            if (types != null) {
                if (i >= types.length) {
                    throw new ModelFormatException(VOCABULARY + ": " + pieces.length + " pieces but "
                            + types.length + " token types");
                }
                t[i] = TokenType.ofCode(types[i]);
                if (t[i] == null) {
                    throw new ModelFormatException(VOCABULARY + ": token " + i + " has unknown type " + types[i]);
                }
            } else {
                t[i] = i == bos || i == eos ? TokenType.CONTROL
                        : byteValue(pieces[i]) >= 0 ? TokenType.BYTE : TokenType.NORMAL;
            }
            if (t[i] == TokenType.UNKNOWN && unk < 0) unk = i;
        }
        return new SentencePieceTokenizer(VOCABULARY, pieces, scores, t, unk, bos, eos, addBos, true);
    }

    @Override public int vocabSize() { return pieces.length; }

    @Override public int bos() { return bos; }

    @Override public int eos() { return eos; }

    /** The unknown-token id, or -1. */
    public int unk() { return unk; }

    public TokenType type(int id) { return types[checkToken(id)]; }

    public float score(int id) { return scores[checkToken(id)]; }

    @Override
    public int[] encode(String text, boolean addSpecial) {
        boolean withBos = addSpecial && addBos && bos >= 0;
        if (text.isEmpty()) return withBos ? new int[] {bos} : new int[0];
        String s = addDummyPrefix ? " " + text : text;
        int[] symbols = new int[s.length() * 3 + 1];
        int n = 0;
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            int end = i + Character.charCount(cp);
            Integer id = lookup.get(s.substring(i, end));
            if (id != null) {
                symbols[n++] = id;
            } else {
                if (cp >= Character.MIN_SURROGATE && cp <= Character.MAX_SURROGATE) cp = 0xFFFD; // lone surrogate: no UTF-8 form
                for (byte b : Character.toString(cp).getBytes(StandardCharsets.UTF_8)) {
                    int bid = byteIds[b & 0xff] >= 0 ? byteIds[b & 0xff] : unk;
                    if (bid >= 0) symbols[n++] = bid;
                }
            }
            i = end;
        }
        int[] merged = PairMerger.merge(Arrays.copyOf(symbols, n), rule);
        if (!withBos) return merged;
        int[] out = new int[merged.length + 1];
        out[0] = bos;
        System.arraycopy(merged, 0, out, 1, merged.length);
        return out;
    }

    private long mergePair(int left, int right) {
        if (!mergeable(left) || !mergeable(right)) return MergeRule.NO_MERGE;
        Integer id = lookup.get(normalized[left] + normalized[right]);
        return id == null ? MergeRule.NO_MERGE : MergeRule.pack(priority[id], id);
    }

    @Override
    public byte[] tokenBytes(int previous, int id) {
        checkToken(id);
        if (isSpecial(id)) return new byte[0];
        byte[] b = bytes[id];
        // run.c: after BOS, SentencePiece's decoder strips the leading space of the dummy prefix.
        if (previous == bos && bos >= 0 && types[id] != TokenType.BYTE && b.length > 0 && b[0] == ' ') {
            return Arrays.copyOfRange(b, 1, b.length);
        }
        return b.clone();
    }

    @Override public String piece(int id) { return pieces[checkToken(id)]; }

    @Override
    public boolean isSpecial(int id) {
        TokenType t = types[checkToken(id)];
        return t == TokenType.CONTROL || t == TokenType.UNKNOWN;
    }

    private boolean mergeable(int id) {
        return types[id] == TokenType.NORMAL || types[id] == TokenType.USER_DEFINED;
    }

    private int checkToken(int id) {
        if (id < 0 || id >= pieces.length) {
            throw new IllegalArgumentException("token id " + id + " outside the vocabulary (size " + pieces.length + ")");
        }
        return id;
    }

    private static void checkId(String source, String what, int id, int n) {
        if (id < -1 || id >= n) {
            throw new ModelFormatException(source + ": " + what + " id " + id + " outside the vocabulary (size "
                    + n + ")");
        }
    }

    /** The byte a {@code <0xXX>} piece stands for, or -1 for any other piece. */
    static int byteValue(String piece) {
        if (piece.length() != 6 || !piece.startsWith("<0x") || piece.charAt(5) != '>') return -1;
        int hi = Character.digit(piece.charAt(3), 16), lo = Character.digit(piece.charAt(4), 16);
        return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
    }

    /** Rank 0 for the highest score; equal scores share a rank so that ties merge leftmost first. */
    private static int[] denseRanks(float[] scores) {
        float[] distinct = scores.clone();
        Arrays.sort(distinct);
        int m = 0;
        for (int i = 0; i < distinct.length; i++) {
            if (m == 0 || Float.compare(distinct[i], distinct[m - 1]) != 0) distinct[m++] = distinct[i];
        }
        int[] rank = new int[scores.length];
        for (int i = 0; i < scores.length; i++) rank[i] = m - 1 - Arrays.binarySearch(distinct, 0, m, scores[i]);
        return rank;
    }
}
