package dev.tandem.cluster;

import dev.tandem.cluster.policy.ClusterDesign;
import dev.tandem.cluster.policy.PoolPolicy;
import dev.tandem.cluster.router.Router;
import dev.tandem.cluster.worker.LocalWorker;
import dev.tandem.cluster.worker.Worker;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.model.Model;
import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineConfig;
import dev.tandem.engine.Role;
import dev.tandem.engine.transport.InProcessKvTransport;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;

/**
 * A whole cluster in one JVM (`tandem serve --design ...`): workers on one model's weights, each with its own
 * engine, KV cache and backend, KV moving between them by memory copy, a {@link Router} in front.
 * The colocated design runs prompt + token workers' count of mixed workers, so designs compare at equal size.
 */
public final class EmbeddedCluster implements AutoCloseable {
    private final Router router;
    private final List<LocalWorker> workers;
    private final InProcessKvTransport transport;

    private EmbeddedCluster(Router router, List<LocalWorker> workers, InProcessKvTransport transport) {
        this.router = router;
        this.workers = workers;
        this.transport = transport;
    }

    /**
     * @param backends a fresh backend for worker i (each engine loop needs its own; closed with the worker)
     */
    public static EmbeddedCluster start(Model model, Router.Config config, int promptWorkers, int tokenWorkers, EngineConfig engine,
                                        IntFunction<Backend> backends) {
        return start(model, config, promptWorkers, tokenWorkers, engine, backends, config.design().pools());
    }

    /** With a pool policy other than the design's default (e.g. another mixed-pool threshold). */
    public static EmbeddedCluster start(Model model, Router.Config config, int promptWorkers, int tokenWorkers, EngineConfig engine,
                                        IntFunction<Backend> backends, PoolPolicy pools) {
        if (promptWorkers < 1 || tokenWorkers < 1) {
            throw new IllegalArgumentException("a cluster needs at least one prompt and one token worker, got " + promptWorkers + " and " + tokenWorkers);
        }
        InProcessKvTransport transport = new InProcessKvTransport();
        List<LocalWorker> workers = new ArrayList<>();
        try {
            for (int i = 0; i < promptWorkers + tokenWorkers; i++) {
                Role role = config.design() == ClusterDesign.MIXED ? Role.MIXED : i < promptWorkers ? Role.PROMPT : Role.TOKEN;
                Backend backend = backends.apply(i);
                Engine e;
                try {
                    e = new Engine(model, backend, new EngineConfig(engine.maxNumSeqs(), engine.maxNumBatchedTokens(), engine.kvCacheBytes(),
                            engine.blockSize(), engine.maxQueue(), role, engine.prefixCaching()));
                } catch (RuntimeException ex) {
                    backend.close();
                    throw ex;
                }
                String address = "worker-" + i;
                // Colocated workers never hand over (and a device KV cache has no host-memory receiver).
                if (role != Role.MIXED) transport.register(address, e.kvReceiver());
                workers.add(new LocalWorker(i, e, transport, address, backend));
            }
            Router router = new Router(workers, model.tokenizer(), model.config().contextLength(), config,
                    config.design().routing(engine.blockSize()), pools);
            return new EmbeddedCluster(router, workers, transport);
        } catch (RuntimeException e) {
            workers.forEach(Worker::close);
            transport.close();
            throw e;
        }
    }

    public Router router() { return router; }

    public List<LocalWorker> workers() { return workers; }

    @Override
    public void close() {
        router.close();
        workers.forEach(Worker::close);
        transport.close();
    }
}
