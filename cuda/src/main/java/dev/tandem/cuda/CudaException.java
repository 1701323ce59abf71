package dev.tandem.cuda;

/** A failed CUDA, NVRTC or cuBLASLt call: the message names the call, the error code and the library's own text. */
public final class CudaException extends RuntimeException {
    private final int code;

    public CudaException(String call, int code, String text) {
        super(call + " failed: " + code + " (" + text + ")");
        this.code = code;
    }

    public CudaException(String message) {
        super(message);
        this.code = -1;
    }

    public int code() { return code; }
}
