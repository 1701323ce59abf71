package dev.tandem.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The CUDA driver API through the FFM API. Every entry point is looked up once with cuGetProcAddress at a fixed
 * API version ({@link #API_VERSION}), so the driver hands out the matching versioned function (cuMemAlloc_v2 and
 * so on) and nothing guesses suffixes. Every call is checked: a failure is a {@link CudaException} naming the
 * call and the driver's error string. Device pointers are longs; contexts, modules, functions and streams are
 * opaque addresses.
 */
public final class CudaDriver {
    /** The driver API version the entry points are requested for (CUDA 12.0's ABI). */
    public static final int API_VERSION = 12000;

    private static final Linker LINKER = Linker.nativeLinker();
    private static volatile CudaDriver instance;
    private static volatile Throwable unavailable;

    private final MethodHandle cuInit, cuDriverGetVersion, cuDeviceGetCount, cuDeviceGet, cuDeviceGetName, cuDeviceGetAttribute,
            cuDevicePrimaryCtxRetain, cuCtxSetCurrent, cuCtxSynchronize, cuMemAlloc, cuMemFree, cuMemcpyHtoD, cuMemcpyDtoH,
            cuMemsetD8, cuModuleLoadData, cuModuleGetFunction, cuModuleUnload, cuLaunchKernel, cuGetErrorString,
            cuMemHostAlloc, cuMemFreeHost, cuEventCreate, cuEventRecord, cuEventSynchronize, cuEventElapsedTime, cuEventDestroy,
            cuStreamCreate, cuStreamDestroy, cuStreamSynchronize, cuMemcpyHtoDAsync, cuMemcpyDtoHAsync, cuMemcpyDtoDAsync,
            cuMemsetD8Async, cuStreamBeginCapture, cuStreamEndCapture, cuGraphInstantiate, cuGraphLaunch, cuGraphExecDestroy,
            cuGraphDestroy, cuFuncSetAttribute, cuMemGetInfo, cuDeviceGetPCIBusId, cuStreamWaitEvent, cuEventQuery, cuMemcpy2DAsync;

    private CudaDriver(SymbolLookup lib) {
        MethodHandle getProc = procAddressLookup(lib);
        cuGetErrorString = fn(getProc, "cuGetErrorString", JAVA_INT, ADDRESS);
        cuInit = fn(getProc, "cuInit", JAVA_INT);
        cuDriverGetVersion = fn(getProc, "cuDriverGetVersion", ADDRESS);
        cuDeviceGetCount = fn(getProc, "cuDeviceGetCount", ADDRESS);
        cuDeviceGet = fn(getProc, "cuDeviceGet", ADDRESS, JAVA_INT);
        cuDeviceGetName = fn(getProc, "cuDeviceGetName", ADDRESS, JAVA_INT, JAVA_INT);
        cuDeviceGetAttribute = fn(getProc, "cuDeviceGetAttribute", ADDRESS, JAVA_INT, JAVA_INT);
        cuDevicePrimaryCtxRetain = fn(getProc, "cuDevicePrimaryCtxRetain", ADDRESS, JAVA_INT);
        cuCtxSetCurrent = fn(getProc, "cuCtxSetCurrent", ADDRESS);
        cuCtxSynchronize = fn(getProc, "cuCtxSynchronize");
        cuMemAlloc = fn(getProc, "cuMemAlloc", ADDRESS, JAVA_LONG);
        cuMemFree = fn(getProc, "cuMemFree", JAVA_LONG);
        cuMemcpyHtoD = fn(getProc, "cuMemcpyHtoD", JAVA_LONG, ADDRESS, JAVA_LONG);
        cuMemcpyDtoH = fn(getProc, "cuMemcpyDtoH", ADDRESS, JAVA_LONG, JAVA_LONG);
        cuMemsetD8 = fn(getProc, "cuMemsetD8", JAVA_LONG, ValueLayout.JAVA_BYTE, JAVA_LONG);
        cuMemHostAlloc = fn(getProc, "cuMemHostAlloc", ADDRESS, JAVA_LONG, JAVA_INT);
        cuMemFreeHost = fn(getProc, "cuMemFreeHost", ADDRESS);
        cuModuleLoadData = fn(getProc, "cuModuleLoadData", ADDRESS, ADDRESS);
        cuModuleGetFunction = fn(getProc, "cuModuleGetFunction", ADDRESS, ADDRESS, ADDRESS);
        cuModuleUnload = fn(getProc, "cuModuleUnload", ADDRESS);
        cuLaunchKernel = fn(getProc, "cuLaunchKernel", ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, ADDRESS, ADDRESS, ADDRESS);
        cuEventCreate = fn(getProc, "cuEventCreate", ADDRESS, JAVA_INT);
        cuEventRecord = fn(getProc, "cuEventRecord", ADDRESS, ADDRESS);
        cuEventSynchronize = fn(getProc, "cuEventSynchronize", ADDRESS);
        cuEventElapsedTime = fn(getProc, "cuEventElapsedTime", ADDRESS, ADDRESS, ADDRESS);
        cuEventDestroy = fn(getProc, "cuEventDestroy", ADDRESS);
        cuStreamCreate = fn(getProc, "cuStreamCreate", ADDRESS, JAVA_INT);
        cuStreamDestroy = fn(getProc, "cuStreamDestroy", ADDRESS);
        cuStreamSynchronize = fn(getProc, "cuStreamSynchronize", ADDRESS);
        cuMemcpyHtoDAsync = fn(getProc, "cuMemcpyHtoDAsync", JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS);
        cuMemcpyDtoHAsync = fn(getProc, "cuMemcpyDtoHAsync", ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS);
        cuMemcpyDtoDAsync = fn(getProc, "cuMemcpyDtoDAsync", JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS);
        cuMemsetD8Async = fn(getProc, "cuMemsetD8Async", JAVA_LONG, ValueLayout.JAVA_BYTE, JAVA_LONG, ADDRESS);
        cuStreamBeginCapture = fn(getProc, "cuStreamBeginCapture", ADDRESS, JAVA_INT);
        cuStreamEndCapture = fn(getProc, "cuStreamEndCapture", ADDRESS, ADDRESS);
        cuGraphInstantiate = fn(getProc, "cuGraphInstantiateWithFlags", ADDRESS, ADDRESS, JAVA_LONG);
        cuGraphLaunch = fn(getProc, "cuGraphLaunch", ADDRESS, ADDRESS);
        cuGraphExecDestroy = fn(getProc, "cuGraphExecDestroy", ADDRESS);
        cuGraphDestroy = fn(getProc, "cuGraphDestroy", ADDRESS);
        cuFuncSetAttribute = fn(getProc, "cuFuncSetAttribute", ADDRESS, JAVA_INT, JAVA_INT);
        cuMemGetInfo = fn(getProc, "cuMemGetInfo", ADDRESS, ADDRESS);
        cuDeviceGetPCIBusId = fn(getProc, "cuDeviceGetPCIBusId", ADDRESS, JAVA_INT, JAVA_INT);
        cuStreamWaitEvent = fn(getProc, "cuStreamWaitEvent", ADDRESS, ADDRESS, JAVA_INT);
        cuEventQuery = fn(getProc, "cuEventQuery", ADDRESS);
        cuMemcpy2DAsync = fn(getProc, "cuMemcpy2DAsync", ADDRESS, ADDRESS);
        check("cuInit", invoke(cuInit, 0));
    }

    /** The driver, loaded and initialised once; throws CudaException when there is no usable driver. */
    public static CudaDriver get() {
        CudaDriver d = instance;
        if (d != null) return d;
        synchronized (CudaDriver.class) {
            if (instance != null) return instance;
            if (unavailable != null) throw new CudaException("CUDA is not available: " + unavailable.getMessage());
            try {
                instance = new CudaDriver(NativeLibraries.open("the CUDA driver (libcuda)", List.of("libcuda.so.1", "libcuda.so")));
                return instance;
            } catch (RuntimeException | Error e) {
                unavailable = e;
                throw e instanceof CudaException c ? c : new CudaException("CUDA is not available: " + e);
            }
        }
    }

    /** Whether a driver with at least one device is present (for tests that skip on machines without a GPU). */
    public static String unavailableReason() {
        try {
            return get().deviceCount() > 0 ? null : "the CUDA driver reports no device";
        } catch (CudaException e) {
            return e.getMessage();
        }
    }

    /** cuGetProcAddress as exported: the 5-argument _v2 form (CUDA 12+), else the 4-argument original. */
    private static MethodHandle procAddressLookup(SymbolLookup lib) {
        var v2 = lib.find("cuGetProcAddress_v2");
        if (v2.isPresent()) {
            MethodHandle h = LINKER.downcallHandle(v2.get(), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS));
            return h;
        }
        var v1 = lib.find("cuGetProcAddress").orElseThrow(() -> new CudaException("libcuda exports no cuGetProcAddress: driver too old"));
        MethodHandle h = LINKER.downcallHandle(v1, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG));
        return java.lang.invoke.MethodHandles.dropArguments(h, 4, MemorySegment.class);
    }

    private MethodHandle fn(MethodHandle getProc, String name, java.lang.foreign.MemoryLayout... args) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment pfn = a.allocate(ADDRESS);
            int r = (int) getProc.invokeExact(a.allocateFrom(name), pfn, API_VERSION, 0L, MemorySegment.NULL);
            MemorySegment p = pfn.get(ADDRESS, 0);
            if (r != 0 || p.equals(MemorySegment.NULL)) {
                throw new CudaException("cuGetProcAddress(" + name + ", " + API_VERSION + ") found no entry point (result " + r + ")");
            }
            return LINKER.downcallHandle(p, FunctionDescriptor.of(JAVA_INT, args));
        } catch (CudaException e) {
            throw e;
        } catch (Throwable t) {
            throw new CudaException("cuGetProcAddress(" + name + "): " + t);
        }
    }

    private static int invoke(MethodHandle h, Object... args) {
        try {
            return (int) h.invokeWithArguments(args);
        } catch (Throwable t) {
            throw new CudaException("native call failed: " + t);
        }
    }

    /** Throws CudaException for a non-zero CUresult, with the driver's own description. */
    public void check(String call, int result) {
        if (result == 0) return;
        String text = "unknown error";
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            if (invoke(cuGetErrorString, result, out) == 0) {
                MemorySegment s = out.get(ADDRESS, 0);
                if (!s.equals(MemorySegment.NULL)) text = s.reinterpret(1024).getString(0);
            }
        }
        throw new CudaException(call, result, text);
    }

    private int call(String name, MethodHandle h, Object... args) {
        int r = invoke(h, args);
        check(name, r);
        return r;
    }

    public int driverVersion() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            call("cuDriverGetVersion", cuDriverGetVersion, v);
            return v.get(JAVA_INT, 0);
        }
    }

    public int deviceCount() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            call("cuDeviceGetCount", cuDeviceGetCount, v);
            return v.get(JAVA_INT, 0);
        }
    }

    public int device(int ordinal) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            call("cuDeviceGet(" + ordinal + ")", cuDeviceGet, v, ordinal);
            return v.get(JAVA_INT, 0);
        }
    }

    public String deviceName(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(256);
            call("cuDeviceGetName", cuDeviceGetName, v, 256, device);
            return v.getString(0);
        }
    }

    /** The device's PCI bus id ("0000:19:00.0"), by which NVML finds the same board. */
    public String pciBusId(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(64);
            call("cuDeviceGetPCIBusId", cuDeviceGetPCIBusId, v, 64, device);
            return v.getString(0);
        }
    }

    /** A CUdevice_attribute value, e.g. 75/76 = compute capability major/minor. */
    public int deviceAttribute(int attribute, int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            call("cuDeviceGetAttribute(" + attribute + ")", cuDeviceGetAttribute, v, attribute, device);
            return v.get(JAVA_INT, 0);
        }
    }

    /** The context each thread last made current through {@link #usePrimaryContext} (0: none). */
    private static final ThreadLocal<long[]> CURRENT = ThreadLocal.withInitial(() -> new long[1]);

    /** Retains the device's primary context and makes it current on the calling thread. */
    public MemorySegment usePrimaryContext(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            call("cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRetain, v, device);
            MemorySegment ctx = v.get(ADDRESS, 0);
            call("cuCtxSetCurrent", cuCtxSetCurrent, ctx);
            CURRENT.get()[0] = ctx.address();
            return ctx;
        }
    }

    /**
     * Whether {@code context} is the one the calling thread last made current: a thread that drives backends on
     * several GPUs (a cluster in one JVM starting and closing its workers) switches whenever it changes GPU.
     */
    public boolean isCurrent(MemorySegment context) { return CURRENT.get()[0] == context.address(); }

    public void synchronize() { call("cuCtxSynchronize", cuCtxSynchronize); }

    /** Device memory (cuMemAlloc, never managed memory). */
    public long malloc(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_LONG);
            call("cuMemAlloc(" + bytes + " bytes)", cuMemAlloc, v, bytes);
            return v.get(JAVA_LONG, 0);
        }
    }

    public void free(long ptr) { call("cuMemFree", cuMemFree, ptr); }

    public void copyToDevice(long dst, MemorySegment src, long bytes) { call("cuMemcpyHtoD", cuMemcpyHtoD, dst, src, bytes); }

    public void copyToHost(MemorySegment dst, long src, long bytes) { call("cuMemcpyDtoH", cuMemcpyDtoH, dst, src, bytes); }

    public void memset(long dst, byte value, long bytes) { call("cuMemsetD8", cuMemsetD8, dst, value, bytes); }

    /** Page-locked host memory for fast transfers (cuMemHostAlloc); release with {@link #freeHost}. */
    public MemorySegment hostAlloc(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            call("cuMemHostAlloc(" + bytes + " bytes)", cuMemHostAlloc, v, bytes, 0);
            return v.get(ADDRESS, 0).reinterpret(bytes);
        }
    }

    public void freeHost(MemorySegment p) { call("cuMemFreeHost", cuMemFreeHost, p); }

    /** Loads a PTX or cubin image. */
    public MemorySegment loadModule(byte[] image) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            MemorySegment img = a.allocate(image.length + 1L);
            MemorySegment.copy(image, 0, img, ValueLayout.JAVA_BYTE, 0, image.length);
            call("cuModuleLoadData", cuModuleLoadData, v, img);
            return v.get(ADDRESS, 0);
        }
    }

    public MemorySegment function(MemorySegment module, String name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            call("cuModuleGetFunction(" + name + ")", cuModuleGetFunction, v, module, a.allocateFrom(name));
            return v.get(ADDRESS, 0);
        }
    }

    public void unloadModule(MemorySegment module) { call("cuModuleUnload", cuModuleUnload, module); }

    /**
     * Launches a kernel. Each argument is a Long (device pointers, 64-bit ints), Integer or Float, passed by value
     * in the order of the kernel's parameters.
     */
    public void launch(MemorySegment function, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ, int sharedBytes,
                       MemorySegment stream, Object... args) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment params = a.allocate(ADDRESS, Math.max(1, args.length));
            for (int i = 0; i < args.length; i++) {
                MemorySegment slot = switch (args[i]) {
                    case Long l -> a.allocateFrom(JAVA_LONG, l);
                    case Integer n -> a.allocateFrom(JAVA_INT, n);
                    case Float f -> a.allocateFrom(ValueLayout.JAVA_FLOAT, f);
                    default -> throw new IllegalArgumentException("kernel argument " + i + " has unsupported type " + args[i].getClass().getSimpleName());
                };
                params.setAtIndex(ADDRESS, i, slot);
            }
            call("cuLaunchKernel", cuLaunchKernel, function, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes,
                    stream == null ? MemorySegment.NULL : stream, params, MemorySegment.NULL);
        }
    }

    /** A stream that synchronises with the legacy default stream (flags 0), so plain copies stay ordered with it. */
    public MemorySegment createStream() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            call("cuStreamCreate", cuStreamCreate, v, 0);
            return v.get(ADDRESS, 0);
        }
    }

    public void destroyStream(MemorySegment stream) { call("cuStreamDestroy", cuStreamDestroy, stream); }

    public void synchronize(MemorySegment stream) { call("cuStreamSynchronize", cuStreamSynchronize, stream); }

    /** Asynchronous on {@code stream}; {@code src} must stay valid (pinned memory: until the stream reaches the copy). */
    public void copyToDeviceAsync(long dst, MemorySegment src, long bytes, MemorySegment stream) {
        call("cuMemcpyHtoDAsync", cuMemcpyHtoDAsync, dst, src, bytes, stream);
    }

    public void copyToHostAsync(MemorySegment dst, long src, long bytes, MemorySegment stream) {
        call("cuMemcpyDtoHAsync", cuMemcpyDtoHAsync, dst, src, bytes, stream);
    }

    public void copyDeviceAsync(long dst, long src, long bytes, MemorySegment stream) {
        call("cuMemcpyDtoDAsync", cuMemcpyDtoDAsync, dst, src, bytes, stream);
    }

    /**
     * A strided copy on {@code stream}: {@code height} rows of {@code width} bytes, row i from {@code src + i * srcPitch}
     * to {@code dst + i * dstPitch}. Each side is a device pointer or, where its segment is given (non-null), host memory
     * (pinned, for the copy to be asynchronous); the pointer argument of a host side is ignored. One call gathers or
     * scatters the same slot range of many sequences (the offload executor's per-sequence KV rows).
     */
    public void copy2DAsync(MemorySegment srcHost, long srcDevice, long srcPitch, MemorySegment dstHost, long dstDevice, long dstPitch,
                            long width, long height, MemorySegment stream) {
        if (width > srcPitch || width > dstPitch) {
            throw new IllegalArgumentException("a 2D copy's rows (" + width + " bytes) must fit its pitches (" + srcPitch + ", " + dstPitch + ")");
        }
        if (height == 0 || width == 0) return;
        try (Arena a = Arena.ofConfined()) {
            // CUDA_MEMCPY2D (cuda.h): size_t and pointer fields, the two CUmemorytype enums padded to 8 bytes.
            MemorySegment p = a.allocate(128, 8);
            copySide(p, 0, srcHost, srcDevice, srcPitch);
            copySide(p, 56, dstHost, dstDevice, dstPitch);
            p.set(JAVA_LONG, 112, width);
            p.set(JAVA_LONG, 120, height);
            call("cuMemcpy2DAsync", cuMemcpy2DAsync, p, stream);
        }
    }

    private static final int MEMORY_HOST = 1, MEMORY_DEVICE = 2;

    /**
     * One side of a CUDA_MEMCPY2D at {@code at} (0 for the source, 56 for the destination): XInBytes, Y, memoryType
     * (padded to 8 bytes), host pointer, device pointer, array, pitch.
     */
    private static void copySide(MemorySegment p, long at, MemorySegment host, long device, long pitch) {
        p.set(JAVA_LONG, at, 0);
        p.set(JAVA_LONG, at + 8, 0);
        p.set(JAVA_INT, at + 16, host != null ? MEMORY_HOST : MEMORY_DEVICE);
        p.set(JAVA_LONG, at + 24, host != null ? host.address() : 0);
        p.set(JAVA_LONG, at + 32, host != null ? 0 : device);
        p.set(JAVA_LONG, at + 40, 0);
        p.set(JAVA_LONG, at + 48, pitch);
    }

    public void memsetAsync(long dst, byte value, long bytes, MemorySegment stream) {
        call("cuMemsetD8Async", cuMemsetD8Async, dst, value, bytes, stream);
    }

    /** Free and total device memory of the current context's device, in bytes. */
    public long[] memoryInfo() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment free = a.allocate(JAVA_LONG), total = a.allocate(JAVA_LONG);
            call("cuMemGetInfo", cuMemGetInfo, free, total);
            return new long[] {free.get(JAVA_LONG, 0), total.get(JAVA_LONG, 0)};
        }
    }

    /** CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: lets a kernel use more than 48 KiB of dynamic shared memory. */
    public void setMaxDynamicSharedMemory(MemorySegment function, int bytes) {
        call("cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES, " + bytes + ")", cuFuncSetAttribute, function, 8, bytes);
    }

    /** Starts recording the stream's work into a graph (thread-local capture mode: other threads are unaffected). */
    public void beginCapture(MemorySegment stream) {
        call("cuStreamBeginCapture", cuStreamBeginCapture, stream, 1 /* CU_STREAM_CAPTURE_MODE_THREAD_LOCAL */);
    }

    /** Ends the capture and instantiates the recorded graph; returns the executable graph. */
    public MemorySegment endCapture(MemorySegment stream) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment g = a.allocate(ADDRESS), exec = a.allocate(ADDRESS);
            call("cuStreamEndCapture", cuStreamEndCapture, stream, g);
            MemorySegment graph = g.get(ADDRESS, 0);
            try {
                call("cuGraphInstantiateWithFlags", cuGraphInstantiate, exec, graph, 0L);
            } finally {
                call("cuGraphDestroy", cuGraphDestroy, graph);
            }
            return exec.get(ADDRESS, 0);
        }
    }

    public void launchGraph(MemorySegment exec, MemorySegment stream) { call("cuGraphLaunch", cuGraphLaunch, exec, stream); }

    public void destroyGraph(MemorySegment exec) { call("cuGraphExecDestroy", cuGraphExecDestroy, exec); }

    /**
     * Launches with a caller-owned kernel parameter array (pointers to argument values), without allocating: the
     * hot path of a backend that launches hundreds of kernels per step.
     */
    public void launch(MemorySegment function, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ, int sharedBytes,
                       MemorySegment stream, MemorySegment params) {
        int r;
        MemorySegment s = stream == null ? MemorySegment.NULL : stream;
        try {
            r = (int) cuLaunchKernel.invokeExact(function, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, s, params,
                    MemorySegment.NULL);
        } catch (Throwable t) {
            throw new CudaException("native call failed: " + t);
        }
        check("cuLaunchKernel", r);
    }

    // Events order work between streams (a copy stream feeding a compute stream) without blocking the host.

    /** An event without timing (cheaper to record and wait on). */
    public MemorySegment createEvent() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            call("cuEventCreate", cuEventCreate, v, 2 /* CU_EVENT_DISABLE_TIMING */);
            return v.get(ADDRESS, 0);
        }
    }

    public void recordEvent(MemorySegment event, MemorySegment stream) { call("cuEventRecord", cuEventRecord, event, stream); }

    /** Work queued on {@code stream} after this call waits until {@code event} has happened. */
    public void waitEvent(MemorySegment stream, MemorySegment event) { call("cuStreamWaitEvent", cuStreamWaitEvent, stream, event, 0); }

    public void synchronizeEvent(MemorySegment event) { call("cuEventSynchronize", cuEventSynchronize, event); }

    /** Whether the work before the event's last record has finished (CUDA_ERROR_NOT_READY: not yet). */
    public boolean eventDone(MemorySegment event) {
        int r = invoke(cuEventQuery, event);
        if (r == 600 /* CUDA_ERROR_NOT_READY */) return false;
        check("cuEventQuery", r);
        return true;
    }

    public void destroyEvent(MemorySegment event) { call("cuEventDestroy", cuEventDestroy, event); }

    /** Milliseconds the device spends on {@code work} (events on the default stream around it). */
    public float time(Runnable work) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment e0 = a.allocate(ADDRESS), e1 = a.allocate(ADDRESS), ms = a.allocate(ValueLayout.JAVA_FLOAT);
            call("cuEventCreate", cuEventCreate, e0, 0);
            call("cuEventCreate", cuEventCreate, e1, 0);
            MemorySegment start = e0.get(ADDRESS, 0), stop = e1.get(ADDRESS, 0);
            try {
                call("cuEventRecord", cuEventRecord, start, MemorySegment.NULL);
                work.run();
                call("cuEventRecord", cuEventRecord, stop, MemorySegment.NULL);
                call("cuEventSynchronize", cuEventSynchronize, stop);
                call("cuEventElapsedTime", cuEventElapsedTime, ms, start, stop);
                return ms.get(ValueLayout.JAVA_FLOAT, 0);
            } finally {
                call("cuEventDestroy", cuEventDestroy, start);
                call("cuEventDestroy", cuEventDestroy, stop);
            }
        }
    }
}
