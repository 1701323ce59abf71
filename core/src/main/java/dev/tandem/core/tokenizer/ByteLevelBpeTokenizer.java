package dev.tandem.core.tokenizer;

import dev.tandem.core.format.ModelFormatException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.UnaryOperator;

/**
 * Byte-level BPE (GPT-2, Llama 3, Qwen ...): added tokens are cut out of the text literally, the rest is
 * normalised, split into words by the pre-tokenizer and written in the byte-level alphabet, and each word is
 * merged by rank. Decoding maps the byte-level characters back to bytes.
 */
public final class ByteLevelBpeTokenizer implements Tokenizer {
    /** The Llama 3 split pattern (GGUF tokenizer.ggml.pre "llama-bpe"). */
    public static final String LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
            + "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    /** GPT-2's split pattern, the default when GGUF names none. */
    public static final String GPT2_REGEX = PreTokenizer.GPT2_REGEX;

    private static final int CACHE_LIMIT = 1 << 16;

    private final String[] pieces;
    private final byte[][] bytes;
    private final boolean[] special;
    private final Map<String, Integer> vocab;
    private final BpeMerges merges;
    private final boolean ignoreMerges;
    private final int unk;
    private final UnaryOperator<String> normalizer;
    private final PreTokenizer preTokenizer;
    private final AddedTokens added;
    private final int[] prefix, suffix;
    private final int bos, eos;
    private final TokenizerConfig config;
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();

    /**
     * {@code vocab} maps the model's pieces (byte-level strings) to ids; {@code addedTokens} are matched in the
     * text first; {@code prefix} / {@code suffix} are what encoding with addSpecial puts around the ids.
     */
    ByteLevelBpeTokenizer(Map<String, Integer> vocab, BpeMerges merges, boolean ignoreMerges, int unk,
                          UnaryOperator<String> normalizer, PreTokenizer preTokenizer,
                          List<AddedTokens.Token> addedTokens, int[] prefix, int[] suffix, int bos, int eos,
                          TokenizerConfig config) {
        int size = 0;
        for (int id : vocab.values()) size = Math.max(size, id + 1);
        for (AddedTokens.Token t : addedTokens) size = Math.max(size, t.id() + 1);
        pieces = new String[size];
        bytes = new byte[size][];
        special = new boolean[size];
        for (Map.Entry<String, Integer> e : vocab.entrySet()) {
            pieces[e.getValue()] = e.getKey();
            bytes[e.getValue()] = pieceBytes(e.getKey());
        }
        Map<String, Integer> all = new HashMap<>(vocab);
        for (AddedTokens.Token t : addedTokens) {
            pieces[t.id()] = t.content();
            // Added tokens are plain text, but HF's ByteLevel decoder maps them too when it can.
            bytes[t.id()] = pieceBytes(t.content());
            special[t.id()] = t.special();
            all.putIfAbsent(t.content(), t.id());
        }
        this.vocab = all;
        this.merges = merges;
        this.ignoreMerges = ignoreMerges;
        this.unk = unk;
        this.normalizer = normalizer;
        this.preTokenizer = preTokenizer;
        this.added = new AddedTokens(addedTokens);
        this.prefix = prefix.clone();
        this.suffix = suffix.clone();
        this.bos = bos;
        this.eos = eos;
        this.config = config;
    }

    /** A Hugging Face tokenizer directory: tokenizer.json, plus tokenizer_config.json when present. */
    public static ByteLevelBpeTokenizer fromHuggingFace(Path dir) throws IOException {
        return HuggingFaceTokenizerReader.read(dir);
    }

    /**
     * A vocabulary as GGUF stores it for {@code tokenizer.ggml.model == "gpt2"}: byte-level pieces, their
     * {@link TokenType} codes (may be null), merges as "a b", and the split regex for tokenizer.ggml.pre (null
     * for GPT-2's). Control and user-defined tokens are matched literally in the text; control ones are special.
     */
    public static ByteLevelBpeTokenizer fromVocabulary(String[] tokens, int[] types, String[] merges, int bos, int eos,
                                                       boolean addBos, String preRegex) {
        String source = "tokenizer vocabulary";
        if (types != null && types.length != tokens.length) {
            throw new ModelFormatException(source + ": " + tokens.length + " tokens but " + types.length + " token types");
        }
        Map<String, Integer> vocab = new HashMap<>();
        List<AddedTokens.Token> added = new ArrayList<>();
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i] == null) throw new ModelFormatException(source + ": token " + i + " is null");
            TokenType t = types == null ? (i == bos || i == eos ? TokenType.CONTROL : TokenType.NORMAL)
                    : TokenType.ofCode(types[i]);
            if (t == null) throw new ModelFormatException(source + ": token " + i + " has unknown type " + types[i]);
            if (t == TokenType.CONTROL || t == TokenType.USER_DEFINED) {
                added.add(new AddedTokens.Token(tokens[i], i, t == TokenType.CONTROL, false, false, false));
            } else {
                vocab.putIfAbsent(tokens[i], i);
            }
        }
        checkId(source, "bos", bos, tokens.length);
        checkId(source, "eos", eos, tokens.length);
        List<String[]> pairs = new ArrayList<>(merges.length);
        for (int i = 0; i < merges.length; i++) pairs.add(BpeMerges.parse(source, i, merges[i]));
        PreTokenizer pre = PreTokenizer.sequence(List.of(
                PreTokenizer.isolate(preRegex != null ? preRegex : GPT2_REGEX), PreTokenizer.byteLevel(false, false)));
        int[] prefix = addBos && bos >= 0 ? new int[] {bos} : new int[0];
        return new ByteLevelBpeTokenizer(vocab, new BpeMerges(source, vocab, pairs), false, -1,
                UnaryOperator.identity(), pre, added, prefix, new int[0], bos, eos, TokenizerConfig.NONE);
    }

    @Override public int vocabSize() { return pieces.length; }

    @Override public int bos() { return bos; }

    @Override public int eos() { return eos; }

    /** The chat template from tokenizer_config.json (or chat_template.jinja), for the server to render. */
    public Optional<String> chatTemplate() { return config.chatTemplate(); }

    public Optional<String> bosToken() { return config.bosToken(); }

    public Optional<String> eosToken() { return config.eosToken(); }

    /** The id of a piece or added token as written in the vocabulary, or -1. */
    public int tokenId(String piece) {
        Integer id = vocab.get(piece);
        return id == null ? -1 : id;
    }

    @Override
    public int[] encode(String text, boolean addSpecial) {
        IntList out = new IntList(text.length() / 3 + 8);
        if (addSpecial) out.addAll(prefix);
        List<String> words = new ArrayList<>();
        for (AddedTokens.Segment s : added.split(text)) {
            if (s.isToken()) {
                out.add(s.id());
                continue;
            }
            words.clear();
            preTokenizer.split(normalizer.apply(s.text()), words);
            for (String w : words) out.addAll(word(w));
        }
        if (addSpecial) out.addAll(suffix);
        return out.toArray();
    }

    /** BPE of one byte-level word; words repeat a lot in text, hence the cache. */
    private int[] word(String w) {
        int[] ids = cache.get(w);
        if (ids != null) return ids;
        Integer whole = ignoreMerges ? vocab.get(w) : null;
        if (whole != null) {
            ids = new int[] {whole};
        } else {
            IntList symbols = new IntList(w.length());
            for (int i = 0; i < w.length(); i++) {
                Integer id = vocab.get(String.valueOf(w.charAt(i)));
                if (id != null) symbols.add(id);
                else if (unk >= 0) symbols.add(unk); // without an unk token, HF drops the character
            }
            ids = PairMerger.merge(symbols.toArray(), merges);
        }
        if (cache.size() >= CACHE_LIMIT) cache.clear();
        cache.put(w, ids);
        return ids;
    }

    @Override
    public byte[] tokenBytes(int previous, int id) {
        checkToken(id);
        if (special[id] || bytes[id] == null) return new byte[0];
        return bytes[id].clone();
    }

    @Override
    public String piece(int id) {
        String p = pieces[checkToken(id)];
        return p == null ? "" : p;
    }

    @Override public boolean isSpecial(int id) { return special[checkToken(id)]; }

    /** The merges in rank order as "a b" strings, for writing GGUF. */
    public String[] mergeStrings() { return merges.toStrings(pieces); }

    /** The pre-tokenizer's split regexes, in order. */
    public List<String> splitPatterns() { return preTokenizer.patterns(); }

    /** Whether encoding with addSpecial puts BOS first. */
    public boolean addsBos() { return bos >= 0 && prefix.length > 0 && prefix[0] == bos; }

    private int checkToken(int id) {
        if (id < 0 || id >= pieces.length) {
            throw new IllegalArgumentException("token id " + id + " outside the vocabulary (size " + pieces.length + ")");
        }
        return id;
    }

    /** HF's ByteLevel decoder: the mapped bytes when every character is byte-level, else the text itself. */
    private static byte[] pieceBytes(String piece) {
        byte[] b = ByteLevel.decode(piece);
        return b != null ? b : piece.getBytes(StandardCharsets.UTF_8);
    }

    static void checkId(String source, String what, int id, int n) {
        if (id < -1 || id >= n) {
            throw new ModelFormatException(source + ": " + what + " id " + id + " outside the vocabulary (size " + n + ")");
        }
    }
}
