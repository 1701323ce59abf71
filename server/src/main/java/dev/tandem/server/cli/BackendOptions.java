package dev.tandem.server.cli;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.backend.reference.ReferenceBackend;
import dev.tandem.cuda.backend.CudaBackend;

/** --device, --threads and --precision, shared by the commands that run a model. */
final class BackendOptions {
    private BackendOptions() {}

    static final String[] OPTIONS = {
            "device", "where to run: cpu (default), cuda or cuda:N (NVIDIA GPU N), or reference (scalar, for checking)",
            "threads", "CPU threads (default: all cores)",
            "precision", "GPU storage of weights and KV cache: bf16 (default) or f32 (fp32 GEMMs, for checking)"};

    static Backend open(Args args) {
        String device = args.string("device", "cpu");
        int threads = args.integer("threads", Runtime.getRuntime().availableProcessors());
        if (threads <= 0) throw args.usage("--threads must be positive, got " + threads);
        if (device.equals("cuda") || device.startsWith("cuda:")) {
            int ordinal = 0;
            if (device.startsWith("cuda:")) {
                try {
                    ordinal = Integer.parseInt(device.substring(5));
                } catch (NumberFormatException e) {
                    throw args.usage("--device '" + device + "': expected cuda:N with N a GPU number");
                }
            }
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
