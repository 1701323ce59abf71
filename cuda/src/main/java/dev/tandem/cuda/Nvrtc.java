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
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * NVRTC, CUDA's run-time compiler, for machines where the build had no nvcc: CUDA C source to PTX. Failures name
 * the call, and a compile error carries the compiler's log.
 */
public final class Nvrtc {
    private static volatile Nvrtc instance;

    private final MethodHandle create, compile, ptxSize, ptx, logSize, log, destroy, errorString, version;

    private Nvrtc(SymbolLookup lib) {
        Linker l = Linker.nativeLinker();
        create = l.downcallHandle(find(lib, "nvrtcCreateProgram"), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        compile = l.downcallHandle(find(lib, "nvrtcCompileProgram"), FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        ptxSize = l.downcallHandle(find(lib, "nvrtcGetPTXSize"), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        ptx = l.downcallHandle(find(lib, "nvrtcGetPTX"), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        logSize = l.downcallHandle(find(lib, "nvrtcGetProgramLogSize"), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        log = l.downcallHandle(find(lib, "nvrtcGetProgramLog"), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        destroy = l.downcallHandle(find(lib, "nvrtcDestroyProgram"), FunctionDescriptor.of(JAVA_INT, ADDRESS));
        errorString = l.downcallHandle(find(lib, "nvrtcGetErrorString"), FunctionDescriptor.of(ADDRESS, JAVA_INT));
        version = l.downcallHandle(find(lib, "nvrtcVersion"), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    }

    public static Nvrtc get() {
        if (instance == null) {
            synchronized (Nvrtc.class) {
                if (instance == null) {
                    instance = new Nvrtc(NativeLibraries.open("NVRTC (libnvrtc)",
                            List.of("libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12")));
                }
            }
        }
        return instance;
    }

    private static MemorySegment find(SymbolLookup lib, String name) {
        return lib.find(name).orElseThrow(() -> new CudaException("libnvrtc exports no " + name));
    }

    private void check(String call, int r) {
        if (r == 0) return;
        String text;
        try {
            text = ((MemorySegment) errorString.invokeExact(r)).reinterpret(256).getString(0);
        } catch (Throwable t) {
            text = "unknown";
        }
        throw new CudaException(call, r, text);
    }

    /** NVRTC's version as major * 1000 + minor * 10, like CUDA's. */
    public int version() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment major = a.allocate(JAVA_INT), minor = a.allocate(JAVA_INT);
            check("nvrtcVersion", (int) version.invokeExact(major, minor));
            return major.get(JAVA_INT, 0) * 1000 + minor.get(JAVA_INT, 0) * 10;
        } catch (CudaException e) {
            throw e;
        } catch (Throwable t) {
            throw new CudaException("nvrtcVersion: " + t);
        }
    }

    /** Compiles CUDA C to PTX; {@code options} like "--gpu-architecture=compute_90", "-std=c++17". */
    public byte[] compileToPtx(String name, String source, String... options) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment prog = a.allocate(ADDRESS);
            check("nvrtcCreateProgram(" + name + ")", (int) create.invokeExact(prog, a.allocateFrom(source), a.allocateFrom(name), 0,
                    MemorySegment.NULL, MemorySegment.NULL));
            MemorySegment p = prog.get(ADDRESS, 0);
            try {
                MemorySegment opts = a.allocate(ADDRESS, Math.max(1, options.length));
                for (int i = 0; i < options.length; i++) opts.setAtIndex(ADDRESS, i, a.allocateFrom(options[i]));
                int r = (int) compile.invokeExact(p, options.length, opts);
                if (r != 0) {
                    MemorySegment size = a.allocate(JAVA_LONG);
                    check("nvrtcGetProgramLogSize", (int) logSize.invokeExact(p, size));
                    MemorySegment text = a.allocate(Math.max(1, size.get(JAVA_LONG, 0)));
                    check("nvrtcGetProgramLog", (int) log.invokeExact(p, text));
                    throw new CudaException("nvrtcCompileProgram(" + name + ") failed:\n" + text.getString(0));
                }
                MemorySegment size = a.allocate(JAVA_LONG);
                check("nvrtcGetPTXSize", (int) ptxSize.invokeExact(p, size));
                MemorySegment out = a.allocate(size.get(JAVA_LONG, 0));
                check("nvrtcGetPTX", (int) ptx.invokeExact(p, out));
                return out.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            } finally {
                check("nvrtcDestroyProgram", (int) destroy.invokeExact(prog));
            }
        } catch (CudaException e) {
            throw e;
        } catch (Throwable t) {
            throw new CudaException("NVRTC: " + t);
        }
    }
}
