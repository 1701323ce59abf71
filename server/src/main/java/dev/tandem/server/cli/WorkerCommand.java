package dev.tandem.server.cli;

import dev.tandem.cluster.membership.Etcd;
import dev.tandem.cluster.membership.WorkerRegistration;
import dev.tandem.cluster.rpc.Messages;
import dev.tandem.cluster.rpc.WorkerNode;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.format.ModelLoader;
import dev.tandem.core.format.TokenizerFiles;
import dev.tandem.core.model.Model;
import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineConfig;
import dev.tandem.engine.Role;
import dev.tandem.server.http.ServerConfig;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * `tandem worker`: one worker process of a split cluster. The control plane (gRPC) listens on --port, KV hand-overs
 * arrive on --kv-port (default port + 1), /metrics and /health are served on --http-port (default port + 2). With
 * --etcd the worker registers under a lease that it keeps alive.
 */
final class WorkerCommand {
    static final Map<String, String> VALUED = new LinkedHashMap<>(ServeCommand.VALUED);

    static {
        VALUED.remove("design");
        VALUED.remove("prompt-workers");
        VALUED.remove("token-workers");
        VALUED.remove("port");
        VALUED.putAll(Args.options(
                "role", "prompt, token or mixed (required)",
                "port", "control-plane (gRPC) port (required)",
                "kv-port", "port KV hand-overs arrive on (default: port + 1)",
                "http-port", "port of /metrics, /health (and completions on a mixed worker) (default: port + 2)",
                "advertise", "host other processes reach this worker at (default: --host)",
                "etcd", "register in etcd at this URL, e.g. http://127.0.0.1:2379",
                "etcd-ttl", "seconds of the etcd lease: a dead worker vanishes within it (default 5)"));
    }

    int run(String[] argv) throws IOException, InterruptedException {
        Args args = new Args("worker", argv, VALUED, ServeCommand.FLAGS);
        if (args.flag("help")) return Help.print("worker --role prompt|token|mixed --model PATH --port P [options]", VALUED, ServeCommand.FLAGS);
        Role role;
        try {
            role = Role.valueOf(args.required("role").toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw args.usage("--role must be prompt, token or mixed, got '" + args.string("role", "") + "'");
        }
        Path modelPath = Path.of(args.required("model"));
        int port = args.integer("port", -1);
        if (port <= 0) throw args.usage("--port is required (the control-plane port)");
        int kvPort = args.integer("kv-port", port + 1), httpPort = args.integer("http-port", port + 2);
        String host = args.string("host", "127.0.0.1");
        String advertise = args.string("advertise", host);
        long ttl = args.integer("etcd-ttl", 5);
        EngineConfig base = ServeCommand.engineConfig(args);
        EngineConfig config = new EngineConfig(base.maxNumSeqs(), base.maxNumBatchedTokens(), base.kvCacheBytes(), base.blockSize(),
                base.maxQueue(), role, base.prefixCaching());
        ServerConfig http = ServeCommand.serverConfig(args, modelPath, httpPort);
        http = new ServerConfig(http.host(), httpPort, http.apiKey(), http.servedModelName(), http.maxBodyBytes(), http.shutdownTimeout());
        Path tokenizer = args.has("tokenizer") ? Path.of(args.string("tokenizer", null)) : null;

        long t0 = System.nanoTime();
        if (role == Role.PROMPT && (args.has("draft") || args.has("draft-model"))) {
            throw args.usage("a prompt worker only prefills: --draft / --draft-model apply to token and mixed workers");
        }
        try (Model model = ModelLoader.load(modelPath, tokenizer);
             Backend backend = BackendOptions.open(args);
             SpeculationOptions spec = SpeculationOptions.open(args, model);
             Engine engine = new Engine(model, backend, config, spec.config());
             WorkerNode node = new WorkerNode(engine, backend, host, port, kvPort, advertise, modelInfo(modelPath, tokenizer, http, model, engine));
             WorkerRegistration registration = args.has("etcd")
                     ? new WorkerRegistration(new Etcd(args.string("etcd", null)), advertise + ":" + node.port(), ttl) : null) {
            String line = ServeCommand.ready(http.servedModelName(), model, engine.contextLength(),
                    ", " + role.name().toLowerCase(Locale.ROOT) + " worker" + (spec.config() == null ? "" : " speculating (" + spec.config().describe() + ")")
                            + ", control plane " + advertise + ":" + node.port() + ", KV " + node.kvAddress()
                            + (registration == null ? "" : ", registered in " + args.string("etcd", null)), t0);
            return ServeCommand.serve("worker", node.service(), http, line);
        }
    }

    /** What a router started without --model asks this worker for; null when its tokenizer cannot be sent (GGUF, llama2.c). */
    private static Messages.ModelInfo modelInfo(Path modelPath, Path tokenizer, ServerConfig http, Model model, Engine engine) {
        try {
            return new Messages.ModelInfo(http.servedModelName(), model.format(), engine.contextLength(), TokenizerFiles.of(modelPath, tokenizer));
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }
}
