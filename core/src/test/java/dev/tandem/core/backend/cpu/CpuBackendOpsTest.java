package dev.tandem.core.backend.cpu;

import java.util.List;

/** The op contract on the CPU backend, with 2 threads and with 1 (results must not depend on the split). */
class CpuBackendOpsTest extends BackendOpsContract {
    @Override
    protected List<Factory> factories() {
        return List.of(new Factory("cpu", () -> new CpuBackend(2)), new Factory("cpu-1thread", () -> new CpuBackend(1)));
    }
}
