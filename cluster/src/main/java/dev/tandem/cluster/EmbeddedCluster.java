package dev.tandem.cluster;

import dev.tandem.cluster.device.DeviceKvHub;
import dev.tandem.cluster.device.DeviceKvTransport;
import dev.tandem.cluster.policy.ClusterDesign;
import dev.tandem.cluster.policy.PoolPolicy;
import dev.tandem.cluster.router.Router;
import dev.tandem.cluster.worker.LocalWorker;
import dev.tandem.cluster.worker.Worker;
import dev.tandem.core.backend.Backend;
import dev.tandem.core.model.Model;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineConfig;
import dev.tandem.engine.Role;
import dev.tandem.engine.transport.InProcessKvTransport;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;

/**
 * A whole cluster in one JVM (`tandem serve --design ...`): workers on one model's weights, each with its own
 * engine, KV cache and backend, a {@link Router} in front. KV moves between caches in host memory by memory copy,
 * between caches on GPUs over NCCL (a device copy when two workers share a GPU).
 * The colocated design runs prompt + token workers' count of mixed workers, so designs compare at equal size.
 */
public final class EmbeddedCluster implements AutoCloseable {
    private final Router router;
    private final List<LocalWorker> workers;
    private final InProcessKvTransport transport;
    private final DeviceKvHub deviceHub;
    private final List<DeviceKvTransport> deviceTransports;

    private EmbeddedCluster(Router router, List<LocalWorker> workers, InProcessKvTransport transport, DeviceKvHub deviceHub,
                            List<DeviceKvTransport> deviceTransports) {
        this.router = router;
        this.workers = workers;
        this.transport = transport;
        this.deviceHub = deviceHub;
        this.deviceTransports = deviceTransports;
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
        return start(model, config, promptWorkers, tokenWorkers, engine, backends, pools, null);
    }

    /**
     * With speculative decoding on the workers that decode: token workers (and mixed ones) draft and verify in their
     * decode batches; prompt workers only prefill, so they do not speculate. A draft model catches up on a handed-over
     * sequence's tokens in its own cache before it first drafts, so nothing of it crosses the KV transport.
     */
    public static EmbeddedCluster start(Model model, Router.Config config, int promptWorkers, int tokenWorkers, EngineConfig engine,
                                        IntFunction<Backend> backends, PoolPolicy pools, dev.tandem.engine.spec.SpeculativeConfig speculative) {
        if (promptWorkers < 1 || tokenWorkers < 1) {
            throw new IllegalArgumentException("a cluster needs at least one prompt and one token worker, got " + promptWorkers + " and " + tokenWorkers);
        }
        InProcessKvTransport transport = new InProcessKvTransport();
        DeviceKvHub hub = new DeviceKvHub();
        List<DeviceKvTransport> deviceTransports = new ArrayList<>();
        List<LocalWorker> workers = new ArrayList<>();
        try {
            for (int i = 0; i < promptWorkers + tokenWorkers; i++) {
                Role role = config.design() == ClusterDesign.MIXED ? Role.MIXED : i < promptWorkers ? Role.PROMPT : Role.TOKEN;
                Backend backend = backends.apply(i);
                Engine e;
                try {
                    e = new Engine(model, backend, new EngineConfig(engine.maxNumSeqs(), engine.maxNumBatchedTokens(), engine.kvCacheBytes(),
                            engine.blockSize(), engine.maxQueue(), role, engine.prefixCaching()), role == Role.PROMPT ? null : speculative);
                } catch (RuntimeException ex) {
                    backend.close();
                    throw ex;
                }
                String address = "worker-" + i;
                // Colocated workers never hand over. Every worker of a split design may send and receive (the mixed
                // pool lends workers to the other phase).
                if (role != Role.MIXED && backend instanceof CudaBackend cuda) {
                    hub.register(address, cuda, e.kvStorage(), e.kvReceiver());
                    DeviceKvTransport t = new DeviceKvTransport(cuda, hub);
                    deviceTransports.add(t);
                    workers.add(new LocalWorker(i, e, t, address, backend));
                } else {
                    if (role != Role.MIXED) transport.register(address, e.kvReceiver());
                    workers.add(new LocalWorker(i, e, transport, address, backend));
                }
            }
            // NCCL communicators form now, not inside the first requests' hand-overs.
            for (int p = 0; p < promptWorkers && !deviceTransports.isEmpty(); p++) {
                for (int t = promptWorkers; t < promptWorkers + tokenWorkers; t++) {
                    deviceTransports.get(p).connect(workers.get(t).kvAddress(), workers.get(p).engine().kvStorage());
                }
            }
            Router router = new Router(workers, model.tokenizer(), model.config().contextLength(), config,
                    config.design().routing(engine.blockSize()), pools);
            return new EmbeddedCluster(router, workers, transport, hub, deviceTransports);
        } catch (RuntimeException e) {
            deviceTransports.forEach(DeviceKvTransport::close);
            workers.forEach(Worker::close);
            transport.close();
            throw e;
        }
    }

    public Router router() { return router; }

    public List<LocalWorker> workers() { return workers; }

    /** The in-process KV transport between CPU workers (fault injection in tests: {@link InProcessKvTransport#holdCommits}). */
    public InProcessKvTransport transport() { return transport; }

    /** The GPU workers' receiving ends (fault injection in tests: {@link DeviceKvHub#stallDeliveries}). */
    public DeviceKvHub deviceHub() { return deviceHub; }

    /** The GPU prompt workers' KV transports (empty on CPU workers). */
    public List<DeviceKvTransport> deviceTransports() { return List.copyOf(deviceTransports); }

    @Override
    public void close() {
        router.close();
        // Device channels end (communicators destroyed, buffers freed) while the backends are still open.
        deviceTransports.forEach(DeviceKvTransport::close);
        workers.forEach(Worker::close);
        transport.close();
    }
}
