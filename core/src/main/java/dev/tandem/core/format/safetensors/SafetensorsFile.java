package dev.tandem.core.format.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.core.format.MappedFile;
import dev.tandem.core.format.ModelFormatException;
import dev.tandem.core.tensor.DType;
import dev.tandem.core.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One .safetensors file: an 8-byte little-endian header length, a JSON header of
 * {name: {dtype, shape, data_offsets: [begin, end]}}, then the data section the offsets point into.
 */
public final class SafetensorsFile {
    /** Headers beyond this are corrupt, not large (the format's own reference caps them at 100 MB). */
    private static final long MAX_HEADER = 100L << 20;
    private static final ObjectMapper JSON = new ObjectMapper();

    private final MappedFile file;
    private final Map<String, Tensor> tensors = new LinkedHashMap<>();

    private SafetensorsFile(MappedFile file) {
        this.file = file;
    }

    public static SafetensorsFile open(Path path, Arena arena) {
        SafetensorsFile f = new SafetensorsFile(MappedFile.map(path, arena));
        f.parse();
        return f;
    }

    /** Whether the bytes look like a safetensors header (used to recognise the format by content). */
    public static boolean looksLike(MemorySegment seg) {
        if (seg.byteSize() < 10) return false;
        long n = seg.get(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 0);
        return n > 1 && n <= MAX_HEADER && seg.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 8) == '{';
    }

    private void parse() {
        long headerLen = file.i64(0, "header length");
        if (headerLen <= 0 || headerLen > MAX_HEADER) {
            throw file.error("header length " + headerLen + " is not a valid safetensors header size (is this a safetensors file?)");
        }
        file.require(8, headerLen, "JSON header");
        byte[] header = file.slice(8, headerLen, "JSON header").toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        JsonNode root;
        try {
            root = JSON.readTree(new String(header, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw file.error("JSON header does not parse: " + e.getMessage());
        }
        if (root == null || !root.isObject()) throw file.error("JSON header is not an object");
        long dataStart = 8 + headerLen;
        long dataSize = file.size() - dataStart;
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            if (name.equals("__metadata__")) continue;
            JsonNode info = e.getValue();
            String dt = info.path("dtype").asText("");
            DType dtype = switch (dt) {
                case "F32" -> DType.F32;
                case "F16" -> DType.F16;
                case "BF16" -> DType.BF16;
                default -> throw file.error("tensor '" + name + "' has dtype '" + dt + "'; supported: F32, F16, BF16");
            };
            JsonNode shapeNode = info.path("shape");
            JsonNode offs = info.path("data_offsets");
            if (!shapeNode.isArray() || !offs.isArray() || offs.size() != 2) {
                throw file.error("tensor '" + name + "' needs 'shape' and a two-element 'data_offsets'");
            }
            long[] shape = new long[shapeNode.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = shapeNode.get(i).asLong(-1);
                if (shape[i] < 0) throw file.error("tensor '" + name + "' has a negative or non-numeric dimension");
            }
            long begin = offs.get(0).asLong(-1), end = offs.get(1).asLong(-1);
            if (begin < 0 || end < begin || end > dataSize) {
                throw file.error("tensor '" + name + "' data_offsets [" + begin + ", " + end + "] lie outside the data section ("
                        + dataSize + " bytes after the header)");
            }
            long need = dtype.bytesFor(Tensor.elements(shape));
            if (end - begin != need) {
                throw file.error("tensor '" + name + "' is " + dt + " " + java.util.Arrays.toString(shape) + " (" + need
                        + " bytes) but data_offsets span " + (end - begin) + " bytes");
            }
            tensors.put(name, new Tensor(name, dtype, shape, file.slice(dataStart + begin, need, "tensor '" + name + "'")));
        }
    }

    public Path path() { return file.path(); }

    public Map<String, Tensor> tensors() { return tensors; }
}
