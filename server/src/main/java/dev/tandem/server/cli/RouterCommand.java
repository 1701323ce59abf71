package dev.tandem.server.cli;

import dev.tandem.cluster.membership.Etcd;
import dev.tandem.cluster.membership.EtcdMembership;
import dev.tandem.cluster.policy.ClusterDesign;
import dev.tandem.cluster.router.Router;
import dev.tandem.cluster.rpc.RemoteWorker;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.server.http.ServerConfig;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * `tandem router`: the OpenAI-compatible front of a cluster of worker processes, found through etcd (--etcd) or
 * listed (--workers). It needs the model only for its tokenizer, chat template and context length; the weights
 * stay unread (memory-mapped).
 */
final class RouterCommand {
    static final Map<String, String> VALUED = Args.options(
            "model", "the workers' model (for its tokenizer, chat template and context length)",
            "host", "address to bind (default 127.0.0.1)",
            "port", "HTTP port (default 8000)",
            "api-key", "require 'Authorization: Bearer KEY' (health and metrics stay open)",
            "served-model-name", "model name for the API (default: the model's folder or file name)",
            "max-body", "largest request body (default 4M)",
            "shutdown-timeout", "seconds running requests may take to finish on SIGTERM (default 30)",
            "tokenizer", "tokenizer file, if not beside the model",
            "design", "mixed, split (default) or split-mixed-pool: the routing and pool policies",
            "workers", "static list of workers' control planes, HOST:PORT,...",
            "etcd", "find workers in etcd at this URL (e.g. http://127.0.0.1:2379)",
            "transfer-timeout", "seconds a KV hand-over may take before the token worker recomputes (default 30)");
    static final Map<String, String> FLAGS = Args.options("help", "show options");

    int run(String[] argv) throws InterruptedException {
        Args args = new Args("router", argv, VALUED, FLAGS);
        if (args.flag("help")) return Help.print("router --model PATH --port P (--etcd URL | --workers HOST:PORT,...) [options]", VALUED, FLAGS);
        if (args.has("etcd") == args.has("workers")) throw args.usage("give exactly one of --etcd URL and --workers HOST:PORT,...");
        Path modelPath = Path.of(args.required("model"));
        ServerConfig http = ServeCommand.serverConfig(args, modelPath, 8000);
        ClusterDesign design;
        try {
            design = ClusterDesign.parse(args.string("design", "split"));
        } catch (IllegalArgumentException e) {
            throw args.usage(e.getMessage());
        }
        Router.Config config = Router.Config.of(design).withTransferTimeout(Duration.ofSeconds(args.integer("transfer-timeout", 30)));
        Path tokenizer = args.has("tokenizer") ? Path.of(args.string("tokenizer", null)) : null;
        long t0 = System.nanoTime();
        try (Model model = ModelLoader.load(modelPath, tokenizer)) {
            List<RemoteWorker> workers = new ArrayList<>();
            if (args.has("workers")) {
                for (String target : args.string("workers", "").split(",")) {
                    if (target.isBlank()) continue;
                    RemoteWorker w = new RemoteWorker(workers.size(), target.trim(), Duration.ofMillis(100), Duration.ofSeconds(10));
                    if (!w.healthy()) throw new IllegalStateException("worker " + target + " does not answer on its control plane");
                    workers.add(w);
                }
            }
            Router router = new Router(workers, model.tokenizer(), model.config().contextLength(), config);
            EtcdMembership membership = null;
            try {
                if (args.has("etcd")) {
                    membership = new EtcdMembership(new Etcd(args.string("etcd", null)), router, Duration.ofMillis(250));
                    router.setDegradedSource(membership::degraded);
                }
                String line = ServeCommand.ready(http.servedModelName(), model, model.config().contextLength(), ", router (" + design.flag() + ") over "
                        + (membership == null ? workers.size() + " workers" : "workers from " + args.string("etcd", null)), t0);
                return ServeCommand.serve("router", router, http, line);
            } finally {
                if (membership != null) membership.close();
                router.closeAll();
            }
        }
    }
}
