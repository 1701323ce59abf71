package dev.tandem.offload.policy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HardwareProfileTest {

    @Test
    void savedProfilesReadBackInJsonAndYaml(@TempDir Path dir) throws Exception {
        HardwareProfile t4 = HardwareProfile.t4FlexGen();
        for (String name : new String[]{"t4.json", "t4.yaml"}) {
            Path f = dir.resolve(name);
            t4.save(f);
            HardwareProfile back = HardwareProfile.resolve(f.toString());
            assertEquals(t4.cpuToGpu(), back.cpuToGpu(), 1e-3);
            assertEquals(t4.cpuAttention(), back.cpuAttention(), 1e-3);
            assertEquals(t4.gpuMemory(), back.gpuMemory(), 1);
            assertEquals(t4.cpuC3(), back.cpuC3(), 0);
        }
        assertTrue(Files.readString(dir.resolve("t4.json")).contains("\"cpu_to_gpu_gib_s\" : 12.89"));
    }

    @Test
    void scheduleAndHostAttentionRatesRoundTripAndOldFilesStillLoad(@TempDir Path dir) throws Exception {
        HardwareProfile p = HardwareProfile.load(Path.of("profiles/h200x2-tandem-measured.json"));
        assertEquals(HardwareProfile.Schedule.TANDEM, p.schedule());
        assertEquals(0.061e12, p.hostAttentionBf16(), 1e3);
        Path f = dir.resolve("back.yaml");
        p.save(f);
        HardwareProfile back = HardwareProfile.load(f);
        assertEquals(HardwareProfile.Schedule.TANDEM, back.schedule());
        assertEquals(p.hostAttentionGq4(), back.hostAttentionGq4(), 1e3);
        // A profile written before the host-attention probe: no schedule, no host_attention_* keys. It loads under
        // FlexGen's schedule (the formulas it was written for) with its CPU attention rate standing in.
        Path oldYaml = dir.resolve("old.yaml");
        Files.writeString(oldYaml, Files.readString(f).lines()
                .filter(l -> !l.startsWith("schedule") && !l.startsWith("host_attention")).reduce("", (a, b) -> a + b + "\n"));
        HardwareProfile o = HardwareProfile.load(oldYaml);
        assertEquals(HardwareProfile.Schedule.FLEXGEN, o.schedule());
        assertEquals(o.cpuAttention(), o.hostAttentionBf16(), 0);
        assertEquals(o.cpuAttention(), o.hostAttentionGq4(), 0);
        Path bad = dir.resolve("bad.yaml");
        Files.writeString(bad, Files.readString(oldYaml) + "schedule: vllm\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HardwareProfile.load(bad));
        assertTrue(e.getMessage().contains("'schedule' must be flexgen or tandem"), e.getMessage());
    }

    @Test
    void missingConstantNamesTheKeyAndTheFile(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("bad.yaml");
        Files.writeString(f, "name: bad\ngpu_memory_gib: 16\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HardwareProfile.resolve(f.toString()));
        assertTrue(e.getMessage().startsWith(f + ": 'cpu_memory_gib' missing"), e.getMessage());
    }

    @Test
    void unknownProfileIsAnError() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HardwareProfile.resolve("a100"));
        assertTrue(e.getMessage().contains("t4-flexgen, h200"), e.getMessage());
    }
}
