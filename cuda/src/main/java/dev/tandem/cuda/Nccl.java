package dev.tandem.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * NCCL point-to-point (libnccl.so.2 through FFM): what a KV hand-over between GPUs needs. A communicator joins ranks
 * that agreed on one {@linkplain #uniqueId unique id} (sent over the control plane); {@link #send} and
 * {@link #recv} are queued on a CUDA stream and return at once, so a stuck transfer shows as a stream that does not
 * drain: callers poll it against a deadline and {@link #abort} the communicator, which ends the stuck kernels.
 * Every call is checked: a failure is a {@link CudaException} naming the call and NCCL's own text.
 */
public final class Nccl {
    /** Bytes of an ncclUniqueId (NCCL_UNIQUE_ID_BYTES). */
    public static final int UNIQUE_ID_BYTES = 128;
    /** ncclResult_t: ncclSuccess, and ncclInProgress (a non-blocking communicator still working). */
    public static final int SUCCESS = 0, IN_PROGRESS = 7;
    /** ncclDataType_t ncclUint8: transports move bytes. */
    private static final int UINT8 = 1;
    /** ncclUniqueId is {@code struct { char internal[128]; }}, passed by value to ncclCommInitRank. */
    private static final StructLayout UNIQUE_ID = MemoryLayout.structLayout(MemoryLayout.sequenceLayout(UNIQUE_ID_BYTES, JAVA_BYTE).withName("internal"));

    private static volatile Nccl instance;
    private static volatile Throwable unavailable;

    private final MethodHandle getVersion, getUniqueId, commInitRank, commDestroy, commAbort, commGetAsyncError, send, recv, groupStart,
            groupEnd, getErrorString;

    private Nccl(SymbolLookup lib) {
        Linker k = Linker.nativeLinker();
        getVersion = h(k, lib, "ncclGetVersion", ADDRESS);
        getUniqueId = h(k, lib, "ncclGetUniqueId", ADDRESS);
        commInitRank = h(k, lib, "ncclCommInitRank", ADDRESS, JAVA_INT, UNIQUE_ID, JAVA_INT);
        commDestroy = h(k, lib, "ncclCommDestroy", ADDRESS);
        commAbort = h(k, lib, "ncclCommAbort", ADDRESS);
        commGetAsyncError = h(k, lib, "ncclCommGetAsyncError", ADDRESS, ADDRESS);
        // ncclSend(const void* buf, size_t count, ncclDataType_t type, int peer, ncclComm_t comm, cudaStream_t stream); ncclRecv alike.
        send = h(k, lib, "ncclSend", JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
        recv = h(k, lib, "ncclRecv", JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
        groupStart = h(k, lib, "ncclGroupStart");
        groupEnd = h(k, lib, "ncclGroupEnd");
        getErrorString = k.downcallHandle(lib.find("ncclGetErrorString").orElseThrow(() -> new CudaException("libnccl exports no ncclGetErrorString")),
                FunctionDescriptor.of(ADDRESS, JAVA_INT));
    }

    /** NCCL, loaded once; throws CudaException when libnccl is not on the loader path. */
    public static Nccl get() {
        Nccl n = instance;
        if (n != null) return n;
        synchronized (Nccl.class) {
            if (instance != null) return instance;
            if (unavailable != null) throw new CudaException("NCCL is not available: " + unavailable.getMessage());
            try {
                instance = new Nccl(NativeLibraries.open("NCCL (libnccl)", List.of("libnccl.so.2", "libnccl.so")));
                return instance;
            } catch (RuntimeException | Error e) {
                unavailable = e;
                throw e instanceof CudaException c ? c : new CudaException("NCCL is not available: " + e);
            }
        }
    }

    /** Why NCCL cannot be used here, or null when it can (for tests and for choosing a transport). */
    public static String unavailableReason() {
        try {
            get();
            return null;
        } catch (CudaException e) {
            return e.getMessage();
        }
    }

    private static MethodHandle h(Linker k, SymbolLookup lib, String name, MemoryLayout... args) {
        return k.downcallHandle(lib.find(name).orElseThrow(() -> new CudaException("libnccl exports no " + name)), FunctionDescriptor.of(JAVA_INT, args));
    }

    /** NCCL's text for an ncclResult_t. */
    public String errorString(int result) {
        try {
            MemorySegment s = (MemorySegment) getErrorString.invokeExact(result);
            return s.equals(MemorySegment.NULL) ? "unknown" : s.reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "unknown";
        }
    }

    private void check(String call, int result) {
        if (result != SUCCESS) throw new CudaException(call, result, errorString(result));
    }

    private static int invoke(MethodHandle h, Object... args) {
        try {
            return (int) h.invokeWithArguments(args);
        } catch (Throwable t) {
            throw new CudaException("native call failed: " + t);
        }
    }

    /** The library's version code (e.g. 22105 for 2.21.5). */
    public int version() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            check("ncclGetVersion", invoke(getVersion, v));
            return v.get(JAVA_INT, 0);
        }
    }

    /** A fresh id for one communicator; rank 0 makes it and every rank gets it over the control plane. */
    public byte[] uniqueId() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment id = a.allocate(UNIQUE_ID);
            check("ncclGetUniqueId", invoke(getUniqueId, id));
            return id.toArray(JAVA_BYTE);
        }
    }

    /**
     * Joins communicator {@code id} as rank {@code rank} of {@code ranks} on the device whose context is current on
     * this thread. Blocks until every rank joined: ranks in one process call it from threads of their own.
     */
    public MemorySegment initRank(int ranks, byte[] id, int rank) {
        if (id.length != UNIQUE_ID_BYTES) throw new IllegalArgumentException("an NCCL unique id has " + UNIQUE_ID_BYTES + " bytes, not " + id.length);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment comm = a.allocate(ADDRESS);
            MemorySegment byValue = a.allocate(UNIQUE_ID);
            MemorySegment.copy(id, 0, byValue, JAVA_BYTE, 0, UNIQUE_ID_BYTES);
            check("ncclCommInitRank(rank " + rank + " of " + ranks + ")", invoke(commInitRank, comm, ranks, byValue, rank));
            return comm.get(ADDRESS, 0);
        }
    }

    /** Frees a communicator whose work is done (waits for it); after a failure use {@link #abort}. */
    public void destroy(MemorySegment comm) { check("ncclCommDestroy", invoke(commDestroy, comm)); }

    /** Ends a communicator at once, stopping its pending and stuck operations; callable from another thread. */
    public void abort(MemorySegment comm) { check("ncclCommAbort", invoke(commAbort, comm)); }

    /** The communicator's asynchronous error (a peer failed, a network error): {@link #SUCCESS} while healthy. */
    public int asyncError(MemorySegment comm) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment r = a.allocate(JAVA_INT);
            check("ncclCommGetAsyncError", invoke(commGetAsyncError, comm, r));
            return r.get(JAVA_INT, 0);
        }
    }

    /** Throws the communicator's asynchronous error, if any, naming {@code what} it was doing. */
    public void checkAsync(MemorySegment comm, String what) {
        int r = asyncError(comm);
        if (r != SUCCESS && r != IN_PROGRESS) throw new CudaException("NCCL communicator (" + what + ")", r, errorString(r));
    }

    /** Queues on {@code stream} the send of {@code bytes} bytes at device address {@code buf} to rank {@code peer}. */
    public void send(long buf, long bytes, int peer, MemorySegment comm, MemorySegment stream) {
        int r;
        try {
            r = (int) send.invokeExact(buf, bytes, UINT8, peer, comm, stream);
        } catch (Throwable t) {
            throw new CudaException("native call failed: " + t);
        }
        if (r != SUCCESS) check("ncclSend(" + bytes + " bytes to rank " + peer + ")", r);
    }

    /** Queues on {@code stream} the receipt of {@code bytes} bytes from rank {@code peer} into device address {@code buf}. */
    public void recv(long buf, long bytes, int peer, MemorySegment comm, MemorySegment stream) {
        int r;
        try {
            r = (int) recv.invokeExact(buf, bytes, UINT8, peer, comm, stream);
        } catch (Throwable t) {
            throw new CudaException("native call failed: " + t);
        }
        if (r != SUCCESS) check("ncclRecv(" + bytes + " bytes from rank " + peer + ")", r);
    }

    /** Sends and receives between this call and {@link #groupEnd} are issued together (both directions at once, no deadlock). */
    public void groupStart() { check("ncclGroupStart", invoke(groupStart)); }

    public void groupEnd() { check("ncclGroupEnd", invoke(groupEnd)); }
}
