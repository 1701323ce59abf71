package dev.tandem.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * The few NVML calls power measurement needs (libnvidia-ml through FFM): a device by its PCI bus id (the CUDA
 * ordinal's device, whatever the enumeration orders), its current draw and its enforced power limit, in watts.
 */
public final class Nvml implements AutoCloseable {
    private final MethodHandle shutdown, powerUsage, powerLimit, errorString;
    private final MemorySegment device;

    /** NVML for the device CUDA calls {@code cudaDevice} (an ordinal of {@link CudaDriver#device}). */
    public Nvml(CudaDriver cuda, int cudaDevice) {
        SymbolLookup lib = NativeLibraries.open("NVML (libnvidia-ml)", List.of("libnvidia-ml.so.1", "libnvidia-ml.so"));
        Linker k = Linker.nativeLinker();
        MethodHandle init = h(k, lib, "nvmlInit_v2");
        MethodHandle byBus = h(k, lib, "nvmlDeviceGetHandleByPciBusId_v2", ADDRESS, ADDRESS);
        shutdown = h(k, lib, "nvmlShutdown");
        powerUsage = h(k, lib, "nvmlDeviceGetPowerUsage", ADDRESS, ADDRESS);
        powerLimit = h(k, lib, "nvmlDeviceGetEnforcedPowerLimit", ADDRESS, ADDRESS);
        errorString = k.downcallHandle(lib.find("nvmlErrorString").orElseThrow(), FunctionDescriptor.of(ADDRESS, JAVA_INT));
        check("nvmlInit_v2", call(init));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            String bus = cuda.pciBusId(cudaDevice);
            check("nvmlDeviceGetHandleByPciBusId_v2(" + bus + ")", call(byBus, a.allocateFrom(bus), out));
            device = out.get(ADDRESS, 0);
        }
    }

    /** The board's current draw in watts. */
    public double powerWatts() { return milliwatts(powerUsage, "nvmlDeviceGetPowerUsage") / 1000.0; }

    /** The power limit the board enforces, in watts. */
    public double powerLimitWatts() { return milliwatts(powerLimit, "nvmlDeviceGetEnforcedPowerLimit") / 1000.0; }

    private long milliwatts(MethodHandle h, String name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment mw = a.allocate(JAVA_INT);
            check(name, call(h, device, mw));
            return Integer.toUnsignedLong(mw.get(JAVA_INT, 0));
        }
    }

    @Override
    public void close() { check("nvmlShutdown", call(shutdown)); }

    private static MethodHandle h(Linker k, SymbolLookup lib, String name, java.lang.foreign.MemoryLayout... args) {
        return k.downcallHandle(lib.find(name).orElseThrow(() -> new CudaException("libnvidia-ml exports no " + name)),
                FunctionDescriptor.of(JAVA_INT, args));
    }

    private static int call(MethodHandle h, Object... args) {
        try {
            return (int) h.invokeWithArguments(args);
        } catch (Throwable t) {
            throw new CudaException("NVML call failed: " + t);
        }
    }

    private void check(String what, int r) {
        if (r == 0) return;
        String text;
        try {
            text = ((MemorySegment) errorString.invokeExact(r)).reinterpret(256).getString(0);
        } catch (Throwable t) {
            text = "unknown";
        }
        throw new CudaException(what, r, text);
    }
}
