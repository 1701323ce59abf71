package dev.tandem.cluster.rpc;

import dev.tandem.core.sampling.SamplingParams;
import dev.tandem.engine.GenerationRequest;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** The control plane's messages survive the wire (JSON on gRPC) with every field a worker acts on. */
class MessagesTest {
    @Test
    void aRecomputedRemainderKeepsItsSampledCountAndSpeculationOverTheWire() {
        SamplingParams sampling = new SamplingParams(0.8f, 40, 0.95f, 0f, 1f, 64, 0f, 0f, 7L);
        GenerationRequest original = new GenerationRequest(new int[]{1, 15, 27}, 20, sampling, true, -1, false);
        GenerationRequest rest = original.continuedAfter(new int[]{300, 301, 302, 303}, 3); // three tokens were sent
        var m = WorkerRpc.SUBMIT.getRequestMarshaller();
        GenerationRequest received = m.parse(m.stream(Messages.Submit.of(Messages.Mode.PREFILL, rest, "10.0.0.2:9001", 42, 5000))).request();
        assertArrayEquals(new int[]{1, 15, 27, 300, 301, 302}, received.promptTokens());
        assertEquals(17, received.maxTokens());
        assertEquals(3, received.sampledTokens(), "the new worker's sampler skips the draws of the tokens already sent");
        assertEquals(sampling, received.sampling());
        assertFalse(received.speculative());
    }
}
