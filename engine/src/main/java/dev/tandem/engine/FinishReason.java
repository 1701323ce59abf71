package dev.tandem.engine;

/** Why a sequence stopped: OpenAI's "stop" (EOS or a stop string) and "length", plus cancellation. */
public enum FinishReason {
    STOP("stop"), LENGTH("length"), CANCELLED("cancelled"), ABORTED("abort");

    private final String openAi;

    FinishReason(String openAi) { this.openAi = openAi; }

    /** The value of OpenAI's finish_reason field. */
    public String openAi() { return openAi; }
}
