package dev.tandem.cuda.backend;

import dev.tandem.cuda.CudaDriver;
import dev.tandem.cuda.CudaException;
import dev.tandem.cuda.Nvrtc;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * Tandem's kernel module (src/main/cuda/tandem_kernels.cu). The build compiles it with nvcc when nvcc is present
 * (sm_80 and sm_90 code plus compute_90 PTX, as a fatbin resource); without that resource NVRTC compiles the source
 * resource at run time for the device's architecture and caches the PTX under ~/.cache/tandem/kernels, keyed by a hash
 * of the source and the architecture.
 */
public final class CudaKernels {
    static final String SOURCE = "/dev/tandem/cuda/kernels/tandem_kernels.cu";
    static final String FATBIN = "/dev/tandem/cuda/kernels/tandem_kernels.fatbin";

    private final CudaDriver cuda;
    private final MemorySegment module;
    private final Map<String, MemorySegment> functions = new HashMap<>();
    private final String origin;

    CudaKernels(CudaDriver cuda, int device) {
        this.cuda = cuda;
        // -Dtandem.cuda.kernels=nvrtc compiles the source even when the build packaged a fatbin (for checking that path).
        byte[] fatbin = "nvrtc".equals(System.getProperty("tandem.cuda.kernels")) ? null : resource(FATBIN);
        int major = cuda.deviceAttribute(75, device), minor = cuda.deviceAttribute(76, device);
        if (fatbin != null && major >= 8) {
            module = cuda.loadModule(fatbin);
            origin = "nvcc fatbin (build time)";
        } else {
            module = cuda.loadModule(compiled(major * 10 + minor));
            origin = "NVRTC (run time, sm_" + major + minor + ")";
        }
    }

    /** Where the loaded code came from, for logs. */
    public String origin() { return origin; }

    MemorySegment get(String name) {
        return functions.computeIfAbsent(name, n -> cuda.function(module, n));
    }

    void unload() { cuda.unloadModule(module); }

    private static byte[] compiled(int arch) {
        byte[] source = resource(SOURCE);
        if (source == null) throw new CudaException("the kernel source " + SOURCE + " is missing from the class path");
        String key;
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update(source);
            sha.update(("sm_" + arch).getBytes(StandardCharsets.UTF_8));
            key = HexFormat.of().formatHex(sha.digest()).substring(0, 24);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        Path cache = Path.of(System.getProperty("user.home"), ".cache", "tandem", "kernels", key + ".ptx");
        try {
            if (Files.isRegularFile(cache)) return Files.readAllBytes(cache);
        } catch (IOException ignored) {
            // recompile below
        }
        List<String> options = new java.util.ArrayList<>(List.of("--gpu-architecture=compute_" + arch, "-std=c++17", "-default-device"));
        for (Path inc : includeDirs()) options.add("--include-path=" + inc);
        byte[] ptx = Nvrtc.get().compileToPtx("tandem_kernels.cu", new String(source, StandardCharsets.UTF_8), options.toArray(String[]::new));
        try {
            Files.createDirectories(cache.getParent());
            Path tmp = Files.createTempFile(cache.getParent(), key, ".tmp");
            Files.write(tmp, ptx);
            Files.move(tmp, cache, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            System.err.println("tandem: could not cache compiled kernels at " + cache + ": " + e.getMessage());
        }
        return ptx;
    }

    /** CUDA's include directory (cuda_bf16.h, mma.h), from CUDA_HOME / CUDA_PATH or the usual install places. */
    private static List<Path> includeDirs() {
        List<Path> candidates = new java.util.ArrayList<>();
        for (String env : new String[] {"CUDA_HOME", "CUDA_PATH"}) {
            String v = System.getenv(env);
            if (v != null) candidates.add(Path.of(v, "include"));
        }
        candidates.add(Path.of("/usr/local/cuda/include"));
        try (var dirs = Files.list(Path.of("/usr/local"))) {
            dirs.filter(p -> p.getFileName().toString().startsWith("cuda-")).sorted(java.util.Comparator.reverseOrder())
                    .forEach(p -> candidates.add(p.resolve("include")));
        } catch (IOException ignored) {
            // no /usr/local
        }
        candidates.add(Path.of("/usr/include"));
        return candidates.stream().filter(p -> Files.isRegularFile(p.resolve("cuda_bf16.h"))).limit(1).toList();
    }

    private static byte[] resource(String name) {
        try (InputStream in = CudaKernels.class.getResourceAsStream(name)) {
            return in == null ? null : in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
