package dev.tandem.server.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `tandem generate-batch --pipeline-devices` as a user runs it: the one-device output, a per-stage report, usage errors (exit 2). */
class GenerateBatchPipelineCliTest {
    static final String MODEL = CliTest.SHARED.resolve("models/gutenberg-stories-llama-25m").toString();

    @Test
    void twoStagesWriteWhatOneDeviceWritesAndReportEachStage(@TempDir Path dir) throws Exception {
        Path in = dir.resolve("in.jsonl");
        Files.write(in, List.of("{\"prompt\": \"Once upon a time\", \"max_tokens\": 12}", "{\"prompt\": \"The little dog\"}",
                "{\"prompt\": \"She opened the door\", \"max_tokens\": 7}"));
        String policy = "1 1 50 50 0 100 0 100";
        CliTest.Result one = CliTest.run("generate-batch", "--model", MODEL, "--input", in.toString(), "--output", dir.resolve("one.jsonl").toString(),
                "--offload", policy, "--max-tokens", "10", "--ignore-eos", "--threads", "1");
        assertEquals(0, one.code(), one.err());
        CliTest.Result two = CliTest.run("generate-batch", "--model", MODEL, "--input", in.toString(), "--output", dir.resolve("two.jsonl").toString(),
                "--offload", policy, "--max-tokens", "10", "--ignore-eos", "--threads", "2", "--pipeline-devices", "cpu,cpu");
        assertEquals(0, two.code(), two.err());
        assertEquals(Files.readAllLines(dir.resolve("one.jsonl")), Files.readAllLines(dir.resolve("two.jsonl")));
        assertTrue(Files.readAllLines(dir.resolve("two.jsonl")).get(0).contains("\"tokens\":12"), Files.readString(dir.resolve("two.jsonl")));
        assertTrue(two.err().contains("stage 0 on cpu, layers 0-3: busy") && two.err().contains("stage 1 on cpu, layers 4-7: busy"), two.err());
    }

    @Test
    void pipelineDevicesAreCheckedWithOneLineErrors(@TempDir Path dir) throws Exception {
        Path in = dir.resolve("in.jsonl");
        Files.write(in, List.of("{\"prompt\": \"Once upon a time\"}"));
        String out = dir.resolve("out.jsonl").toString();
        CliTest.Result one = CliTest.run("generate-batch", "--model", MODEL, "--input", in.toString(), "--output", out, "--offload",
                "1 1 100 0 100 0 100 0", "--pipeline-devices", "cpu");
        assertEquals(2, one.code(), one.err());
        assertTrue(one.err().contains("--pipeline-devices needs two devices or more"), one.err());
        CliTest.Result both = CliTest.run("generate-batch", "--model", MODEL, "--input", in.toString(), "--output", out, "--offload",
                "1 1 100 0 100 0 100 0", "--pipeline-devices", "cpu,cpu", "--device", "cpu");
        assertEquals(2, both.code(), both.err());
        assertTrue(both.err().contains("--pipeline-devices replaces --device"), both.err());
    }
}
