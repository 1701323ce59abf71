package dev.tandem.sim.config;

import java.util.List;

/**
 * A machine kind as the paper provisions it: a DGX of 8 GPUs, its cost and power in the paper's units
 * (Splitwise, Table / notebooks: DGX-A100 2.21 cost, 24.8 power; DGX-H100 4.76 and 44; the 70%-power-capped
 * H100 costs as much and draws 0.7x), its TDP in watts, and the profile's hardware name.
 */
public record MachineType(String hardware, int gpus, double gpuMemoryGb, double cost, double power, double tdpWatts) {
    public static final MachineType A100 = new MachineType("a100-80gb", 8, 80, 2.21, 24.8, 6500);
    public static final MachineType H100 = new MachineType("h100-80gb", 8, 80, 4.76, 44, 10200);
    public static final MachineType H100_PCAP = new MachineType("h100-80gb-pcap", 8, 80, 4.76, 44 * 0.7, 7140);

    public static final List<MachineType> KNOWN = List.of(A100, H100, H100_PCAP);

    public static MachineType byHardware(String hardware) {
        for (MachineType m : KNOWN) if (m.hardware.equals(hardware)) return m;
        throw new IllegalArgumentException("unknown hardware '" + hardware + "' (known: a100-80gb, h100-80gb, h100-80gb-pcap;"
                + " other hardware needs gpus, gpu_memory_gb, cost_per_hour and power in the config)");
    }
}
