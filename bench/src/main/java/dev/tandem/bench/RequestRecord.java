package dev.tandem.bench;

/**
 * One request's outcome, times in seconds: {@code scheduledS} and {@code sentS} from the run's start, the
 * latencies from {@code sentS}. Latencies are NaN where they do not exist (no first token, fewer than two chunks).
 *
 * @param promptTokens      prompt size we built (tokens under our tokenizer, special tokens included)
 * @param maxTokens         output tokens asked for
 * @param serverPromptTokens usage.prompt_tokens, -1 if not sent: a check that server and bench count alike
 * @param outputTokens      tokens generated (usage.completion_tokens, else text chunks)
 * @param chunkTimesS       arrival of each text chunk, seconds after {@code sentS}
 */
public record RequestRecord(int id, int traceLine, double scheduledS, double sentS, int promptTokens, int maxTokens,
                            int serverPromptTokens, int outputTokens, boolean usageReported, double[] chunkTimesS,
                            double e2eS, int httpStatus, String error) {

    public static RequestRecord of(PlannedRequest p, int promptTokens, Completion c, long runStartNanos) {
        double[] chunks = new double[c.chunkNanos().length];
        for (int i = 0; i < chunks.length; i++) chunks[i] = (c.chunkNanos()[i] - c.sendNanos()) / 1e9;
        return new RequestRecord(p.index(), p.traceLine(), p.offsetS(), (c.sendNanos() - runStartNanos) / 1e9,
                promptTokens, p.outputTokens(), c.promptTokens(), c.tokens(), c.completionTokens() >= 0, chunks,
                (c.endNanos() - c.sendNanos()) / 1e9, c.status(), c.error());
    }

    public boolean ok() {
        return error == null;
    }

    /** Time to first token: the first chunk that carried text. */
    public double ttftS() {
        return chunkTimesS.length > 0 ? chunkTimesS[0] : Double.NaN;
    }

    /**
     * Mean time between tokens after the first, (last chunk - first chunk) / (tokens - 1): counts tokens, not
     * chunks, so a server that sends several tokens per chunk is not penalised. NaN with a single token.
     */
    public double meanTbtS() {
        if (outputTokens < 2 || chunkTimesS.length < 2) return Double.NaN;
        return (chunkTimesS[chunkTimesS.length - 1] - chunkTimesS[0]) / (outputTokens - 1);
    }

    /** Gaps between successive text chunks: the TBT samples this request contributes. */
    public double[] chunkGapsS() {
        if (chunkTimesS.length < 2) return new double[0];
        double[] g = new double[chunkTimesS.length - 1];
        for (int i = 1; i < chunkTimesS.length; i++) g[i - 1] = chunkTimesS[i] - chunkTimesS[i - 1];
        return g;
    }

    /** Seconds the send was behind schedule (generator or concurrency cap could not keep up). */
    public double lateS() {
        return sentS - scheduledS;
    }

    public double endS() {
        return sentS + e2eS;
    }
}
