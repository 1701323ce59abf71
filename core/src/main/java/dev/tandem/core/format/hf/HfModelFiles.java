package dev.tandem.core.format.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.core.format.ModelFormatException;
import dev.tandem.core.format.safetensors.SafetensorsFile;
import dev.tandem.core.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/** The safetensors weights of a Hugging Face folder: model.safetensors, or shards listed by model.safetensors.index.json. */
public final class HfModelFiles {
    public final Map<String, Tensor> tensors = new LinkedHashMap<>();
    public final Map<String, String> fileOf = new HashMap<>();

    public static HfModelFiles open(Path dir, Arena arena) {
        HfModelFiles f = new HfModelFiles();
        Path index = dir.resolve("model.safetensors.index.json");
        Path single = dir.resolve("model.safetensors");
        if (Files.exists(index)) {
            JsonNode map;
            try {
                map = new ObjectMapper().readTree(Files.readString(index)).path("weight_map");
            } catch (IOException e) {
                throw new ModelFormatException(index + ": cannot parse: " + e.getMessage());
            }
            if (!map.isObject()) throw new ModelFormatException(index + ": missing object 'weight_map'");
            Set<String> shards = new LinkedHashSet<>();
            map.fields().forEachRemaining(e -> shards.add(e.getValue().asText()));
            for (String shard : shards) {
                Path p = dir.resolve(shard).normalize();
                if (!p.startsWith(dir.normalize())) throw new ModelFormatException(index + ": shard '" + shard + "' is outside the model folder");
                f.add(SafetensorsFile.open(p, arena));
            }
            map.fields().forEachRemaining(e -> {
                String file = f.fileOf.get(e.getKey());
                if (file == null) {
                    throw new ModelFormatException(index + ": tensor '" + e.getKey() + "' is listed in '" + e.getValue().asText() + "' but that file does not hold it");
                }
            });
        } else if (Files.exists(single)) {
            f.add(SafetensorsFile.open(single, arena));
        } else {
            throw new ModelFormatException(dir + ": no model.safetensors or model.safetensors.index.json");
        }
        return f;
    }

    private void add(SafetensorsFile file) {
        String name = file.path().getFileName().toString();
        for (var e : file.tensors().entrySet()) {
            if (tensors.put(e.getKey(), e.getValue()) != null) {
                throw new ModelFormatException(name + ": tensor '" + e.getKey() + "' also appears in " + fileOf.get(e.getKey()));
            }
            fileOf.put(e.getKey(), name);
        }
    }
}
