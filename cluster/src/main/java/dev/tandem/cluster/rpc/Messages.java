package dev.tandem.cluster.rpc;

import dev.tandem.core.format.TokenizerFiles;
import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.engine.EngineLoad;
import dev.tandem.engine.EngineStats;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.TokenEvent;

/** The control plane's messages between router and workers (JSON on gRPC). */
public final class Messages {
    private Messages() {}

    public record Empty() {}

    /** What the router learns of a worker at each poll: its pool, where its KV lands, its load and transfer counters. */
    public record Info(String role, String homeRole, String kvAddress, int contextLength, EngineLoad load, EngineStats stats,
                       long kvBytesSent, long kvBlocksSent, long kvTransfers, long kvFailures, double kvSeconds) {}

    /**
     * What a router without its own copy of the model needs from a worker: the name it serves under, its format and
     * context length, and the tokenizer's files (with the chat template).
     */
    public record ModelInfo(String servedModelName, String format, int contextLength, TokenizerFiles tokenizer) {}

    public record SetRole(String role) {}

    public record Recompute(long reservation, int[] tokens) {}

    /** How to run a request: whole here, a prefill handed over to a reservation elsewhere, or a reservation here. */
    public enum Mode { WHOLE, PREFILL, RESERVE }

    public record Submit(Mode mode, int[] prompt, int maxTokens, SamplingParams sampling, boolean ignoreEos, int topLogprobs,
                         boolean speculative, int sampledTokens, String kvAddress, long reservation, long timeoutMillis) {
        public static Submit of(Mode mode, GenerationRequest r, String kvAddress, long reservation, long timeoutMillis) {
            return new Submit(mode, r.promptTokens(), r.maxTokens(), r.sampling(), r.ignoreEos(), r.topLogprobs(), r.speculative(),
                    r.sampledTokens(), kvAddress, reservation, timeoutMillis);
        }

        public GenerationRequest request() {
            return new GenerationRequest(prompt, maxTokens, sampling, ignoreEos, topLogprobs, speculative, sampledTokens);
        }
    }

    /** What a worker streams back for a Submit, in order. */
    public enum Kind { RESERVED, TOKEN, FINISH, ERROR }

    /** Error kinds the router acts on differently: a bad request is not retried elsewhere, a failed transfer is recomputed. */
    public enum Failure { INVALID, REFUSED, TRANSFER, WORKER }

    public record Event(Kind kind, long reservation, TokenEvent token, String reason, int promptTokens, int generated, int cached,
                        Failure failure, String error) {
        static Event reserved(long id) { return new Event(Kind.RESERVED, id, null, null, 0, 0, 0, null, null); }

        static Event token(TokenEvent t) { return new Event(Kind.TOKEN, 0, t, null, 0, 0, 0, null, null); }

        static Event finish(String reason, int p, int g, int c) { return new Event(Kind.FINISH, 0, null, reason, p, g, c, null, null); }

        static Event error(Failure f, String message) { return new Event(Kind.ERROR, 0, null, null, 0, 0, 0, f, message); }
    }
}
