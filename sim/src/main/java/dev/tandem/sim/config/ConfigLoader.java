package dev.tandem.sim.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.tandem.cluster.policy.ClusterDesign;
import dev.tandem.engine.Role;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Reads a simulation config from YAML or JSON (JSON is YAML, so one parser reads both). Unknown keys,
 * missing keys and values of the wrong type are errors naming the file and the key's path, e.g.
 * {@code cluster.yaml: pools[1].machines: expected an integer, got 'ten'}. Relative paths in the file
 * (perf_model, a trace file) are resolved against the file's folder.
 */
public final class ConfigLoader {
    private ConfigLoader() {}

    public static SimConfig load(Path file) {
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException(file + ": config file not found");
        JsonNode root;
        try {
            root = new ObjectMapper(new YAMLFactory()).readTree(Files.readString(file));
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(file + ": not valid YAML/JSON: " + e.getOriginalMessage()
                    + (e.getLocation() != null ? " (line " + e.getLocation().getLineNr() + ")" : ""));
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + e.getMessage(), e);
        }
        Path base = file.toAbsolutePath().getParent();
        Node n = new Node(file.getFileName().toString(), "", root);
        n.only("name", "model", "model_spec", "perf_model", "router", "pools", "kv_link", "instance", "power_model", "workload");
        String name = n.string("name", file.getFileName().toString());
        ModelSpec model = n.has("model_spec") ? modelSpec(n.child("model_spec"), n.string("model", null)) : ModelSpec.byName(n.required("model").text());
        Path perf = n.has("perf_model") ? base.resolve(n.required("perf_model").text()) : SimConfig.defaultPerfModel();

        Node r = n.child("router");
        r.only("design", "prompt_threshold", "kv_low_watermark", "cells", "rebalance_period_s", "front_end_s");
        ClusterDesign design = ClusterDesign.parse(r.required("design").text());
        RouterSpec router = new RouterSpec(design, r.integer("prompt_threshold", ClusterDesign.DEFAULT_PROMPT_THRESHOLD),
                r.number("kv_low_watermark", ClusterDesign.DEFAULT_KV_LOW_WATERMARK), (int) r.integer("cells", 1),
                r.number("rebalance_period_s", RouterSpec.DEFAULT_REBALANCE_PERIOD_S), r.number("front_end_s", 0));

        List<PoolSpec> pools = new ArrayList<>();
        Node ps = n.required("pools");
        if (!ps.json.isArray() || ps.json.isEmpty()) throw ps.error("expected a non-empty list of pools");
        for (int i = 0; i < ps.json.size(); i++) pools.add(pool(ps.element(i)));

        KvLinkSpec kv = KvLinkSpec.DEFAULT;
        if (n.has("kv_link")) {
            Node k = n.child("kv_link");
            k.only("bandwidth_gbps", "latency_s", "layerwise_overlap");
            kv = new KvLinkSpec(k.number("bandwidth_gbps", kv.bandwidthGBps()), k.number("latency_s", kv.latencyS()),
                    k.bool("layerwise_overlap", kv.layerwiseOverlap()));
        }
        InstanceSpec inst = InstanceSpec.DEFAULT;
        if (n.has("instance")) {
            Node k = n.child("instance");
            k.only("max_batch_tokens", "max_batch_size", "block_size", "memory_utilisation", "kv_capacity_tokens", "chunked_prefill",
                    "prefill_context_ns_per_pair", "decode_context_ns_per_token", "decode_context_base_tokens");
            inst = new InstanceSpec((int) k.integer("max_batch_tokens", inst.maxBatchTokens()), (int) k.integer("max_batch_size", inst.maxBatchSize()),
                    (int) k.integer("block_size", inst.blockSize()), k.number("memory_utilisation", inst.memoryUtilisation()),
                    k.integer("kv_capacity_tokens", 0), k.bool("chunked_prefill", inst.chunkedPrefill()),
                    k.number("prefill_context_ns_per_pair", inst.contextNsPerPair()),
                    k.number("decode_context_ns_per_token", inst.decodeContextNsPerToken()),
                    k.integer("decode_context_base_tokens", inst.decodeContextBaseTokens()));
        }
        PowerSpec power = PowerSpec.DEFAULT;
        if (n.has("power_model")) {
            Node k = n.child("power_model");
            k.only("prompt_fraction", "token_fraction", "idle_fraction");
            power = new PowerSpec(k.number("prompt_fraction", power.promptFraction()), k.number("token_fraction", power.tokenFraction()),
                    k.number("idle_fraction", power.idleFraction()));
        }
        Node w = n.child("workload");
        w.only("trace", "rate", "duration_s", "requests", "seed");
        String trace = w.required("trace").text();
        if (!trace.equals("conv") && !trace.equals("code")) trace = base.resolve(trace).toString();
        WorkloadSpec workload = new WorkloadSpec(trace, w.number("rate", 0), w.number("duration_s", 0), w.integer("requests", 0), w.integer("seed", 1));
        try {
            return new SimConfig(name, model, perf, pools, router, kv, inst, power, workload);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    private static ModelSpec modelSpec(Node m, String name) {
        m.only("name", "layers", "kv_bytes_per_token", "weight_bytes");
        return new ModelSpec(m.string("name", name), (int) m.required("layers").integer(),
                m.required("kv_bytes_per_token").integer(), m.required("weight_bytes").integer());
    }

    private static PoolSpec pool(Node p) {
        p.only("name", "role", "machines", "hardware", "tensor_parallel", "gpus", "gpu_memory_gb", "cost_per_hour", "power", "tdp_watts");
        String hw = p.required("hardware").text();
        MachineType known = MachineType.KNOWN.stream().filter(m -> m.hardware().equals(hw)).findFirst().orElse(null);
        MachineType m;
        if (known != null) {
            m = new MachineType(hw, (int) p.integer("gpus", known.gpus()), p.number("gpu_memory_gb", known.gpuMemoryGb()),
                    p.number("cost_per_hour", known.cost()), p.number("power", known.power()), p.number("tdp_watts", known.tdpWatts()));
        } else {
            m = new MachineType(hw, (int) p.required("gpus").integer(), p.required("gpu_memory_gb").number(),
                    p.required("cost_per_hour").number(), p.required("power").number(), p.number("tdp_watts", 0));
        }
        String roleText = p.required("role").text();
        Role role;
        try {
            role = Role.valueOf(roleText.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw p.required("role").error("expected prompt, token or mixed, got '" + roleText + "'");
        }
        int machines = (int) p.required("machines").integer(), tp = (int) p.integer("tensor_parallel", 8);
        try {
            return new PoolSpec(p.string("name", roleText), role, machines, tp, m);
        } catch (IllegalArgumentException e) {
            throw p.error(e.getMessage());
        }
    }

    /** A config value with its path, for error messages. */
    private record Node(String file, String path, JsonNode json) {
        IllegalArgumentException error(String message) {
            return new IllegalArgumentException(file + ": " + (path.isEmpty() ? "" : path + ": ") + message);
        }

        boolean has(String key) {
            return json.has(key) && !json.get(key).isNull();
        }

        Node child(String key) {
            Node c = required(key);
            if (!c.json.isObject()) throw c.error("expected a mapping of keys");
            return c;
        }

        Node element(int i) {
            Node c = new Node(file, path + "[" + i + "]", json.get(i));
            if (!c.json.isObject()) throw c.error("expected a mapping of keys");
            return c;
        }

        Node required(String key) {
            if (!has(key)) throw error("missing key '" + key + "'");
            return new Node(file, path.isEmpty() ? key : path + "." + key, json.get(key));
        }

        void only(String... keys) {
            Set<String> allowed = Set.of(keys);
            for (Iterator<String> it = json.fieldNames(); it.hasNext(); ) {
                String k = it.next();
                if (!allowed.contains(k)) throw error("unknown key '" + k + "' (known: " + String.join(", ", keys) + ")");
            }
        }

        String text() {
            if (!json.isValueNode()) throw error("expected a value");
            return json.asText();
        }

        long integer() {
            if (!json.canConvertToLong() || !json.isIntegralNumber()) throw error("expected an integer, got '" + json.asText() + "'");
            return json.asLong();
        }

        double number() {
            if (!json.isNumber()) throw error("expected a number, got '" + json.asText() + "'");
            return json.asDouble();
        }

        String string(String key, String def) { return has(key) ? required(key).text() : def; }

        long integer(String key, long def) { return has(key) ? required(key).integer() : def; }

        double number(String key, double def) { return has(key) ? required(key).number() : def; }

        boolean bool(String key, boolean def) {
            if (!has(key)) return def;
            Node c = required(key);
            if (!c.json.isBoolean()) throw c.error("expected true or false, got '" + c.json.asText() + "'");
            return c.json.asBoolean();
        }
    }
}
