package dev.tandem.offload.calibrate;

import dev.tandem.cuda.CudaDriver;

import java.lang.foreign.MemorySegment;

/**
 * Copy bandwidth between pinned host memory and the GPU, both ways (FlexGen's ctog and gtoc), and device-to-device
 * (the GPU's memory bandwidth, which bounds decode matmuls of small GPU batches). Best of several copies, timed with
 * CUDA events.
 */
public final class TransferProbe {
    /** Bytes per second: host-to-device, device-to-host (pinned), and device memory (read + write of a device copy). */
    public record Rates(double hostToDevice, double deviceToHost, double deviceMemory, long deviceTotalBytes) {}

    private TransferProbe() {}

    public static Rates measure(int ordinal, long bytes, int repeats) {
        CudaDriver cuda = CudaDriver.get();
        cuda.usePrimaryContext(cuda.device(ordinal));
        MemorySegment host = cuda.hostAlloc(bytes);
        long dev = cuda.malloc(bytes), dev2 = cuda.malloc(bytes);
        try {
            host.fill((byte) 1);
            cuda.copyToDevice(dev, host, bytes);  // first touch
            double h2d = 0, d2h = 0, d2d = 0;
            for (int i = 0; i < repeats; i++) {
                h2d = Math.max(h2d, bytes / (cuda.time(() -> cuda.copyToDevice(dev, host, bytes)) / 1e3));
                d2h = Math.max(d2h, bytes / (cuda.time(() -> cuda.copyToHost(host, dev, bytes)) / 1e3));
                d2d = Math.max(d2d, 2.0 * bytes / (cuda.time(() -> cuda.copyDeviceAsync(dev2, dev, bytes, MemorySegment.NULL)) / 1e3));
            }
            return new Rates(h2d, d2h, d2d, cuda.memoryInfo()[1]);
        } finally {
            cuda.free(dev);
            cuda.free(dev2);
            cuda.freeHost(host);
        }
    }
}
