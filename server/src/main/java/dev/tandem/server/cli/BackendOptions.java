package dev.tandem.server.cli;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.backend.reference.ReferenceBackend;
import dev.tandem.cuda.backend.CudaBackend;

/** --device, --threads and --precision, shared by the commands that run a model. */
final class BackendOptions {
    private BackendOptions() {}

    static final String[] OPTIONS = {
            "device", "where to run: cpu (default), cuda or cuda:N (NVIDIA GPU N), or reference (scalar, for checking); with --design, cuda puts worker i on GPU i (modulo the GPUs present)",
            "threads", "CPU threads (default: all cores)",
            "precision", "GPU storage of weights and KV cache: bf16 (default) or f32 (fp32 GEMMs, for checking)"};

    static Backend open(Args args) {
        return open(args, 1);
    }

    /** N of "cuda:N" (0 for "cuda"), or -1 when {@code device} is not a CUDA device. */
    static int cudaOrdinal(Args args, String device) {
        if (device.equals("cuda")) return 0;
        if (!device.startsWith("cuda:")) return -1;
        try {
            return Integer.parseInt(device.substring(5));
        } catch (NumberFormatException e) {
            throw args.usage("--device '" + device + "': expected cuda:N with N a GPU number");
        }
    }

    /** One of {@code share} backends that split --threads between them (a worker each in an embedded cluster). */
    static Backend open(Args args, int share) { return open(args, share, 0); }

    /**
     * Backend {@code index} of {@code share} (worker i of an embedded cluster): on the CPU they split --threads; with
     * --device cuda (no number) worker i gets GPU i modulo the GPUs present, one GPU per worker where there are enough.
     */
    static Backend open(Args args, int share, int index) { return open(args, args.string("device", "cpu"), share, index); }

    /** As --device {@code device} (another GPU than --device's, e.g. a token worker's), the other options from {@code args}. */
    static Backend open(Args args, String device) { return open(args, device, 1, 0); }

    /** As --device {@code device}, one of {@code share} backends that split --threads (a pipeline stage's). */
    static Backend open(Args args, String device, int share, int index) {
        int threads = args.integer("threads", Runtime.getRuntime().availableProcessors());
        if (threads <= 0) throw args.usage("--threads must be positive, got " + threads);
        threads = Math.max(1, threads / share);
        if (device.equals("cuda") || device.startsWith("cuda:")) {
            int ordinal = device.startsWith("cuda:") ? cudaOrdinal(args, device)
                    : share > 1 ? index % Math.max(1, dev.tandem.cuda.CudaDriver.get().deviceCount()) : 0;
            String precision = args.string("precision", "bf16");
            CudaBackend.Precision p = switch (precision) {
                case "bf16" -> CudaBackend.Precision.BF16;
                case "f32" -> CudaBackend.Precision.F32;
                default -> throw args.usage("--precision must be bf16 or f32, got '" + precision + "'");
            };
            return new CudaBackend(ordinal, p);
        }
        if (args.has("precision")) throw args.usage("--precision applies to --device cuda only");
        return switch (device) {
            case "cpu" -> new CpuBackend(threads);
            case "reference" -> new ReferenceBackend();
            default -> throw args.usage("--device '" + device + "' is not available (available: cpu, cuda[:N], reference)");
        };
    }
}
