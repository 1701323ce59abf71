package dev.tandem.server.cli;

import dev.tandem.core.backend.Backend;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.backend.reference.ReferenceBackend;

/** --device and --threads, shared by the commands that run a model. */
final class BackendOptions {
    private BackendOptions() {}

    static final String[] OPTIONS = {
            "device", "where to run: cpu (default) or reference (scalar, for checking)",
            "threads", "CPU threads (default: all cores)"};

    static Backend open(Args args) {
        return open(args, 1);
    }

    /** One of {@code share} backends that split --threads between them (a worker each in an embedded cluster). */
    static Backend open(Args args, int share) {
        String device = args.string("device", "cpu");
        int threads = args.integer("threads", Runtime.getRuntime().availableProcessors());
        if (threads <= 0) throw args.usage("--threads must be positive, got " + threads);
        threads = Math.max(1, threads / share);
        return switch (device) {
            case "cpu" -> new CpuBackend(threads);
            case "reference" -> new ReferenceBackend();
            default -> throw args.usage("--device '" + device + "' is not available (available: cpu, reference)");
        };
    }
}
