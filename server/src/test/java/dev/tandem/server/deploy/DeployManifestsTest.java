package dev.tandem.server.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.tandem.server.cli.Main;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * deploy/*.yaml hold what `kubectl create --dry-run=client` checks without a cluster (kubectl needs an API server
 * even for that): every document has apiVersion, kind and a DNS-1123 name; Deployments' selectors match their pod
 * labels; Services select existing pods and ports; containers' commands are ones `tandem` knows (their --help
 * succeeds) with the options they pass; workers request a GPU.
 */
class DeployManifestsTest {
    static final Path DEPLOY = Path.of("..", "deploy");
    static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

    static List<JsonNode> documents() throws Exception {
        List<JsonNode> out = new ArrayList<>();
        try (Stream<Path> files = Files.list(DEPLOY)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".yaml")).sorted().toList()) {
                try (MappingIterator<JsonNode> it = YAML.readerFor(JsonNode.class).readValues(f.toFile())) {
                    while (it.hasNext()) {
                        JsonNode d = it.next();
                        if (d != null && !d.isEmpty()) out.add(d);
                    }
                }
            }
        }
        return out;
    }

    @Test
    void everyManifestIsAWellFormedKubernetesObject() throws Exception {
        List<JsonNode> docs = documents();
        Map<String, Integer> kinds = new HashMap<>();
        for (JsonNode d : docs) {
            String kind = d.path("kind").asText();
            String name = d.path("metadata").path("name").asText();
            assertTrue(Set.of("apps/v1", "v1").contains(d.path("apiVersion").asText()), name + ": apiVersion");
            assertTrue(name.matches("[a-z0-9]([-a-z0-9]*[a-z0-9])?") && name.length() <= 63, "name '" + name + "'");
            kinds.merge(kind, 1, Integer::sum);
            if (kind.equals("Deployment")) {
                JsonNode selector = d.path("spec").path("selector").path("matchLabels");
                JsonNode labels = d.path("spec").path("template").path("metadata").path("labels");
                selector.fields().forEachRemaining(e -> assertEquals(e.getValue(), labels.get(e.getKey()), name + ": selector " + e.getKey()));
                assertTrue(d.path("spec").path("template").path("spec").path("containers").size() > 0, name + ": containers");
            }
            if (kind.equals("Service")) {
                JsonNode sel = d.path("spec").path("selector");
                boolean selects = docs.stream().filter(x -> x.path("kind").asText().equals("Deployment")).anyMatch(x -> {
                    JsonNode l = x.path("spec").path("template").path("metadata").path("labels");
                    var it = sel.fields();
                    while (it.hasNext()) {
                        var e = it.next();
                        if (!e.getValue().equals(l.get(e.getKey()))) return false;
                    }
                    return true;
                });
                assertTrue(selects, name + " selects no Deployment's pods");
            }
        }
        assertEquals(4, kinds.get("Deployment"), "etcd, router, prompt and token workers");
        assertEquals(2, kinds.get("Service"), "etcd and router");
    }

    @Test
    void containersRunTandemCommandsThatExistAndWorkersRequestAGpu() throws Exception {
        for (JsonNode d : documents()) {
            if (!d.path("kind").asText().equals("Deployment")) continue;
            for (JsonNode c : d.path("spec").path("template").path("spec").path("containers")) {
                if (!c.path("image").asText().startsWith("tandem")) continue;
                List<String> args = new ArrayList<>();
                c.path("args").forEach(a -> args.add(a.asText()));
                String command = args.getFirst();
                String help = help(command);
                for (String a : args) {
                    if (a.startsWith("--")) assertTrue(help.contains(a + " "), command + " has no option " + a + ":\n" + help);
                }
                if (command.equals("worker")) {
                    assertEquals(1, c.path("resources").path("limits").path("nvidia.com/gpu").asInt(), d.path("metadata").path("name") + ": GPU");
                    assertFalse(c.path("env").isEmpty(), "workers advertise their pod IP");
                }
            }
        }
    }

    private static String help(String command) {
        PrintStream old = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true));
        try {
            assertEquals(0, Main.run(new String[]{command, "--help"}), command + " --help");
        } finally {
            System.setOut(old);
        }
        return out.toString();
    }
}
