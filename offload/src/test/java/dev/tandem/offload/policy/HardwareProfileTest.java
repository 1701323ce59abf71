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
