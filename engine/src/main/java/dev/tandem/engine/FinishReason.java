package dev.tandem.engine;

/**
 * Why a sequence stopped: OpenAI's "stop" (EOS or a stop string) and "length", plus cancellation. HANDED_OVER ends
 * a sequence's life on a prompt worker once a token worker took it; clients never see it.
 */
public enum FinishReason {
    STOP("stop"), LENGTH("length"), CANCELLED("cancelled"), ABORTED("abort"), HANDED_OVER("handed_over");

    private final String openAi;

    FinishReason(String openAi) { this.openAi = openAi; }

    /** The value of OpenAI's finish_reason field. */
    public String openAi() { return openAi; }
}
