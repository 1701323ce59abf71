package dev.tandem.cluster.membership;

import dev.tandem.cluster.policy.ClusterDesign;
import dev.tandem.cluster.router.Router;
import dev.tandem.cluster.rpc.WorkerNode;
import dev.tandem.core.backend.cpu.CpuBackend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineConfig;
import dev.tandem.engine.Role;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The router's membership against a real etcd, with its retry period set to an hour: every change it sees must
 * come through the watch, at once, since no periodic read happens while etcd answers.
 */
class EtcdMembershipTest {
    static final Path MODEL = Path.of(System.getProperty("tandem.shared", "../../shared"), "models", "gutenberg-stories-llama-25m");

    @Test
    void joinsLeavesAndReturnsArriveThroughTheWatchAndAStoppedEtcdDegradesToTheLastMembership(@TempDir Path dir) throws Exception {
        Path binary = Stream.of("/usr/bin/etcd", "/usr/local/bin/etcd").map(Path::of).filter(Files::isExecutable).findFirst().orElse(null);
        Assumptions.assumeTrue(binary != null, "etcd is not installed (Debian: apt-get install etcd-server); skipping");
        int client = freePort(), peer = freePort();
        String url = "http://127.0.0.1:" + client;
        Path log = dir.resolve("etcd.log");
        Process etcdProcess = new ProcessBuilder(binary.toString(), "--data-dir", dir.resolve("data").toString(),
                "--listen-client-urls", url, "--advertise-client-urls", url, "--listen-peer-urls", "http://127.0.0.1:" + peer,
                "--initial-advertise-peer-urls", "http://127.0.0.1:" + peer, "--initial-cluster", "default=http://127.0.0.1:" + peer)
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try (Model model = ModelLoader.load(MODEL, null); CpuBackend backend = new CpuBackend(1);
             Engine engine = new Engine(model, backend, new EngineConfig(16, 64, 16L << 20, 16, 256, Role.TOKEN, false));
             WorkerNode node = new WorkerNode(engine, "127.0.0.1", 0, 0, "127.0.0.1")) {
            await(() -> read(log).contains("ready to serve client requests"), 30, "etcd did not start:\n" + read(log));
            Etcd etcd = new Etcd(url);
            Router router = new Router(List.of(), model.tokenizer(), model.config().contextLength(), Router.Config.of(ClusterDesign.SPLIT));
            try (EtcdMembership membership = new EtcdMembership(etcd, router, Duration.ofHours(1))) {
                assertEquals(0, router.workers().size());
                String address = "127.0.0.1:" + node.port();
                WorkerRegistration registration = new WorkerRegistration(etcd, address, 30);
                await(() -> membership.members() == 1, 5, "the worker's key did not reach the router");
                assertEquals(Role.TOKEN, router.workers().getFirst().homeRole());

                registration.close(); // revokes the lease: etcd deletes the key at once
                await(() -> membership.members() == 0, 5, "the deleted key did not reach the router");
                assertTrue(!router.workers().getFirst().healthy(), "a worker that left is down");

                registration = new WorkerRegistration(etcd, address, 30);
                await(() -> membership.members() == 1, 5, "the returning worker did not reach the router");
                assertEquals(1, router.workers().size(), "a returning worker keeps its id");
                assertNull(membership.degraded());

                etcdProcess.destroyForcibly().waitFor();
                await(() -> membership.degraded() != null, 5, "a stopped etcd was not noticed");
                assertTrue(membership.degraded().startsWith("etcd at " + url + " unreachable since"), membership.degraded());
                assertEquals(1, membership.members(), "the last known membership stays");
                assertTrue(router.workers().getFirst().healthy(), "and its worker keeps serving");
                registration.close();
            } finally {
                router.close();
            }
        } finally {
            etcdProcess.destroyForcibly().waitFor();
        }
    }

    static void await(BooleanSupplier condition, int seconds, String message) throws InterruptedException {
        long end = System.nanoTime() + seconds * 1_000_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) throw new AssertionError(message);
            Thread.sleep(20);
        }
    }

    static String read(Path p) {
        try {
            return Files.exists(p) ? Files.readString(p) : "";
        } catch (java.io.IOException e) {
            return e.toString();
        }
    }

    static int freePort() throws java.io.IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
