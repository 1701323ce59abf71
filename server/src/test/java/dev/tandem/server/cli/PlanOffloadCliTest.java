package dev.tandem.server.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `tandem plan-offload` as a user runs it, on FlexGen's T4 setting, and its errors. */
class PlanOffloadCliTest {

    @Test
    void planOffloadPrintsFlexGensT4PolicyThroughputAndBottleneck() {
        CliTest.Result r = CliTest.run("plan-offload", "--model", "opt-30b", "--hardware", "t4-flexgen", "--gpu-mem", "16GiB",
                "--cpu-mem", "208GiB", "--disk-mem", "1500GiB", "--prompt-len", "512", "--gen-len", "32");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("\npolicy: 16 11 "), r.out());
        assertTrue(r.out().contains(" 0 100 0 100 cpu-cache-compute\n"), r.out());
        assertTrue(r.out().contains("predicted throughput: 7.14 tokens/s"), r.out());
        assertTrue(r.out().contains("bottleneck: decode"), r.out());
    }

    @Test
    void planOffloadEvaluatesAGivenPolicy() {
        CliTest.Result r = CliTest.run("plan-offload", "--model", "facebook/opt-30b", "--hardware", "t4-flexgen", "--gpu-mem", "16GiB",
                "--cpu-mem", "208GiB", "--disk-mem", "1500GiB", "--policy", "48 3 20 80 0 100 0 100 cpu-cache-compute");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("predicted throughput: 7.14 tokens/s"), r.out());
        assertTrue(r.out().contains("exceed 80% of a tier"), r.out());
    }

    @Test
    void planOffloadReadsAModelDirectoryAndAProfileFile(@TempDir Path dir) throws Exception {
        Path profile = dir.resolve("hw.yaml");
        dev.tandem.offload.policy.HardwareProfile.t4FlexGen().save(profile);
        CliTest.Result r = CliTest.run("plan-offload", "--model", CliTest.SHARED.resolve("models/gutenberg-stories-llama-25m").toString(),
                "--hardware", profile.toString(), "--gpu-mem", "64M", "--prompt-len", "256", "--gen-len", "32");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("model:    gutenberg-stories-llama-25m: 8 layers, hidden 448"), r.out());
        assertTrue(Files.exists(profile));
    }

    @Test
    void unknownModelAndTooLittleMemoryAreOneLineErrors() {
        CliTest.Result unknown = CliTest.run("plan-offload", "--model", "opt-31b");
        assertEquals(1, unknown.code());
        assertTrue(unknown.err().startsWith("tandem plan-offload: unknown model 'opt-31b'"), unknown.err());
        CliTest.Result small = CliTest.run("plan-offload", "--model", "opt-175b", "--hardware", "t4-flexgen", "--gpu-mem", "4GiB");
        assertEquals(1, small.code());
        assertTrue(small.err().contains("no offloading policy fits opt-175b") && small.err().contains("the GPU needs"), small.err());
        CliTest.Result tooLong = CliTest.run("plan-offload", "--model", "opt-30b", "--prompt-len", "2040", "--gen-len", "32");
        assertEquals(1, tooLong.code());
        assertTrue(tooLong.err().contains("exceeds its context of 2048 tokens"), tooLong.err());
    }
}
