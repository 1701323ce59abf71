package dev.tandem.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.util.List;

/** Finds a shared library by its usual sonames, the way the dynamic loader would (LD_LIBRARY_PATH, ldconfig). */
final class NativeLibraries {
    private NativeLibraries() {}

    /** The first of {@code names} the loader can open, or a CudaException listing what was tried. */
    static SymbolLookup open(String what, List<String> names) {
        StringBuilder tried = new StringBuilder();
        for (String n : names) {
            try {
                return SymbolLookup.libraryLookup(n, Arena.global());
            } catch (IllegalArgumentException e) {
                tried.append(tried.isEmpty() ? "" : ", ").append(n);
            }
        }
        throw new CudaException(what + " not found (tried " + tried + "); is the NVIDIA driver / CUDA toolkit on the loader path?");
    }
}
