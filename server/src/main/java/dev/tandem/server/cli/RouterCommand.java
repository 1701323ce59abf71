package dev.tandem.server.cli;

import dev.tandem.cluster.membership.Etcd;
import dev.tandem.cluster.membership.EtcdMembership;
import dev.tandem.cluster.membership.WorkerRegistration;
import dev.tandem.cluster.policy.ClusterDesign;
import dev.tandem.cluster.router.Router;
import dev.tandem.cluster.rpc.Messages;
import dev.tandem.cluster.rpc.RemoteWorker;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.model.Model;
import dev.tandem.core.tokenizer.Tokenizer;
import dev.tandem.server.http.ServerConfig;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * `tandem router`: the OpenAI-compatible front of a cluster of worker processes, found through etcd (--etcd) or
 * listed (--workers). It needs the model's tokenizer, chat template and context length: from --model (the weights
 * stay unread, memory-mapped), or without it from the first worker that answers the control plane's Model call.
 */
final class RouterCommand {
    static final Map<String, String> VALUED = Args.options(
            "model", "the workers' model, for its tokenizer, chat template and context length (default: asked of a worker)",
            "host", "address to bind (default 127.0.0.1)",
            "port", "HTTP port (default 8000)",
            "api-key", "require 'Authorization: Bearer KEY' (health and metrics stay open)",
            "served-model-name", "model name for the API (default: the model's folder or file name, or the worker's)",
            "max-body", "largest request body (default 4M)",
            "shutdown-timeout", "seconds running requests may take to finish on SIGTERM (default 30)",
            "tokenizer", "tokenizer file, if not beside the model (with --model)",
            "design", "mixed, split (default) or split-mixed-pool: the routing and pool policies",
            "workers", "static list of workers' control planes, HOST:PORT,...",
            "etcd", "find workers in etcd at this URL (e.g. http://127.0.0.1:2379)",
            "transfer-timeout", "seconds a KV hand-over may take before the token worker recomputes (default 30)",
            "wait-for-workers", "without --model: seconds to wait for a worker to ask the model of (default 60)");
    static final Map<String, String> FLAGS = Args.options("help", "show options");

    /** What the router serves as, from the model files or from a worker. */
    private record Front(Tokenizer tokenizer, int contextLength, String format, String defaultName, String source) {}

    int run(String[] argv) throws InterruptedException, IOException {
        Args args = new Args("router", argv, VALUED, FLAGS);
        if (args.flag("help")) return Help.print("router [--model PATH] --port P (--etcd URL | --workers HOST:PORT,...) [options]", VALUED, FLAGS);
        if (args.has("etcd") == args.has("workers")) throw args.usage("give exactly one of --etcd URL and --workers HOST:PORT,...");
        if (args.has("tokenizer") && !args.has("model")) throw args.usage("--tokenizer goes with --model (without --model a worker sends its tokenizer)");
        ClusterDesign design;
        try {
            design = ClusterDesign.parse(args.string("design", "split"));
        } catch (IllegalArgumentException e) {
            throw args.usage(e.getMessage());
        }
        Router.Config config = Router.Config.of(design).withTransferTimeout(Duration.ofSeconds(args.integer("transfer-timeout", 30)));
        List<String> targets = new ArrayList<>();
        if (args.has("workers")) {
            for (String target : args.string("workers", "").split(",")) if (!target.isBlank()) targets.add(target.trim());
        }
        Etcd etcd = args.has("etcd") ? new Etcd(args.string("etcd", null)) : null;
        long t0 = System.nanoTime();
        Model model = args.has("model") ? ModelLoader.load(Path.of(args.string("model", null)),
                args.has("tokenizer") ? Path.of(args.string("tokenizer", null)) : null) : null;
        try {
            Front front = model != null
                    ? new Front(model.tokenizer(), model.config().contextLength(), model.format(),
                            Path.of(args.string("model", null)).toAbsolutePath().normalize().getFileName().toString(), "--model")
                    : askWorker(targets, etcd, Duration.ofSeconds(args.integer("wait-for-workers", 60)));
            ServerConfig http = ServeCommand.serverConfig(args, front.defaultName(), 8000);
            List<RemoteWorker> workers = new ArrayList<>();
            for (String target : targets) {
                RemoteWorker w = new RemoteWorker(workers.size(), target, Duration.ofMillis(100), Duration.ofSeconds(10));
                if (!w.healthy()) throw new IllegalStateException("worker " + target + " does not answer on its control plane");
                workers.add(w);
            }
            Router router = new Router(workers, front.tokenizer(), front.contextLength(), config);
            EtcdMembership membership = null;
            try {
                if (etcd != null) {
                    membership = new EtcdMembership(etcd, router, Duration.ofMillis(250));
                    router.setDegradedSource(membership::degraded);
                }
                String line = ServeCommand.ready(http.servedModelName(), front.format() + ", tokenizer from " + front.source(), front.contextLength(),
                        ", router (" + design.flag() + ") over " + (membership == null ? workers.size() + " workers" : "workers from " + etcd.url()), t0);
                return ServeCommand.serve("router", router, http, line);
            } finally {
                if (membership != null) membership.close();
                router.closeAll();
            }
        } finally {
            if (model != null) model.close();
        }
    }

    /**
     * The tokenizer and context length of the first worker that sends them: one of {@code targets}, or of those
     * registered in etcd (waiting up to {@code wait} for one to register).
     */
    private static Front askWorker(List<String> targets, Etcd etcd, Duration wait) throws InterruptedException, IOException {
        long end = System.nanoTime() + wait.toNanos();
        List<String> failures = new ArrayList<>();
        while (true) {
            List<String> candidates = targets;
            if (etcd != null) {
                try {
                    candidates = etcd.snapshot(WorkerRegistration.PREFIX).values().keySet().stream()
                            .map(k -> k.substring(WorkerRegistration.PREFIX.length())).toList();
                } catch (IOException e) {
                    failures.add("etcd: " + e.getMessage());
                    candidates = List.of();
                }
            }
            for (String target : candidates) {
                try {
                    Messages.ModelInfo info = RemoteWorker.modelInfo(target, Duration.ofSeconds(10));
                    return new Front(info.tokenizer().load(), info.contextLength(), info.format(), info.servedModelName(), "worker " + target);
                } catch (RuntimeException e) {
                    failures.add(target + ": " + e.getMessage());
                }
            }
            if (System.nanoTime() > end || (etcd == null && !failures.isEmpty())) {
                throw new IllegalStateException("no --model given and no worker sent its tokenizer"
                        + (failures.isEmpty() ? " (none registered in " + etcd.url() + " within " + wait.toSeconds() + " s)" : ": "
                        + String.join("; ", failures.subList(Math.max(0, failures.size() - 3), failures.size()))));
            }
            failures.clear();
            Thread.sleep(250);
        }
    }
}
