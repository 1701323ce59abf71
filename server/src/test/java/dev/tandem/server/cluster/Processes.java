package dev.tandem.server.cluster;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** Real `tandem` processes (and etcd) for the cluster tests, started from this JVM's class path and stopped at close. */
final class Processes implements AutoCloseable {
    static final Path SHARED = Path.of(System.getProperty("tandem.shared", "../../shared"));
    static final Path MODEL = SHARED.resolve("models/gutenberg-stories-llama-25m");
    static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    record Proc(String name, Process process, Path log) {
        String output() throws IOException { return Files.readString(log); }

        /** SIGKILL: the process dies at once, as on a machine failure. */
        void kill() throws InterruptedException {
            process.destroyForcibly();
            process.waitFor();
        }
    }

    private final List<Proc> all = new ArrayList<>();
    private final Path dir;

    Processes() throws IOException { dir = Files.createTempDirectory("tandem-cluster-test"); }

    /** Starts `tandem ARGS` and waits for its ready line. */
    Proc tandem(String name, String... args) throws Exception {
        return awaitReady(launch(name, args), "ready in");
    }

    /** Starts `tandem ARGS` without waiting (start several, then {@link #awaitReady} each). */
    Proc launch(String name, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                "dev.tandem.server.cli.Main"));
        cmd.addAll(List.of(args));
        return launch(name, cmd);
    }

    Proc launch(String name, List<String> cmd) throws IOException {
        Path log = dir.resolve(name + ".log");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        Proc proc = new Proc(name, p, log);
        all.add(proc);
        return proc;
    }

    /** Waits until the process printed {@code readyText}; fails with its output if it exits or takes over 60 s. */
    static Proc awaitReady(Proc proc, String readyText) throws Exception {
        String name = proc.name();
        Path log = proc.log();
        Process p = proc.process();
        long end = System.nanoTime() + 60_000_000_000L;
        while (System.nanoTime() < end) {
            String out = Files.readString(log);
            if (out.contains(readyText)) return proc;
            if (!p.isAlive()) throw new IllegalStateException(name + " exited with " + p.exitValue() + ":\n" + out);
            Thread.sleep(100);
        }
        throw new IllegalStateException(name + " not ready within 60 s:\n" + Files.readString(log));
    }

    Path dir() { return dir; }

    /** A base port with {@code n} consecutive free ports (worker: control plane, KV, HTTP), none within 3 of {@code taken}. */
    static int freePorts(int n, int... taken) throws IOException {
        for (int attempt = 0; attempt < 50; attempt++) {
            int base;
            try (ServerSocket s = new ServerSocket(0)) {
                base = s.getLocalPort();
            }
            if (base + n >= 65535) continue;
            boolean ok = true;
            for (int t : taken) if (Math.abs(t - base) < Math.max(n, 3)) ok = false;
            for (int i = 1; i < n && ok; i++) {
                try (ServerSocket s = new ServerSocket(base + i)) {
                    // free
                } catch (IOException e) {
                    ok = false;
                }
            }
            if (ok) return base;
        }
        throw new IOException("no " + n + " consecutive free ports");
    }

    static String get(String url) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString()).body();
    }

    static HttpResponse<String> post(String url, String json) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(120))
                .POST(HttpRequest.BodyPublishers.ofString(json)).header("Content-Type", "application/json").build(), HttpResponse.BodyHandlers.ofString());
    }

    /** The value of a Prometheus sample named {@code name} (first label set), or NaN when absent. */
    static double metric(String metricsText, String name) {
        for (String line : metricsText.split("\n")) {
            if (line.startsWith(name + "{") || line.startsWith(name + " ")) return Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
        }
        return Double.NaN;
    }

    @Override
    public void close() {
        for (Proc p : all.reversed()) {
            p.process.destroy();
        }
        for (Proc p : all) {
            try {
                if (!p.process.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)) p.process.destroyForcibly().waitFor();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
