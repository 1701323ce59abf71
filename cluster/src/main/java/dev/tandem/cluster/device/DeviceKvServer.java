package dev.tandem.cluster.device;

import dev.tandem.core.backend.KvStorage;
import dev.tandem.cuda.backend.CudaBackend;
import dev.tandem.engine.transport.KvReceiver;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;

/**
 * A token worker's KV port when its cache is on a GPU: each prompt worker process that connects opens an NCCL path
 * ({@link RemoteNccl}): this side checks the block size, joins the communicator as rank 1 with the unique id the
 * prompt worker sent, then receives each layer the headers announce into the reserved blocks ({@link NcclReceiver}).
 * A connection that ends mid-way aborts its communicator.
 */
public final class DeviceKvServer implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(DeviceKvServer.class.getName());

    private final ReceivingEnd end;
    private final DeviceKvHub hub;
    private final ServerSocket server;
    private final Set<Socket> open = ConcurrentHashMap.newKeySet();
    private volatile boolean closed;

    public DeviceKvServer(CudaBackend backend, KvStorage cache, KvReceiver receiver, String host, int port, DeviceKvHub hub) throws IOException {
        this.server = new ServerSocket();
        server.bind(new InetSocketAddress(host, port));
        this.end = new ReceivingEnd("kv port " + server.getLocalPort(), backend, cache, receiver);
        this.hub = hub;
        Thread.ofPlatform().daemon().name("tandem-kv-device-accept").start(this::accept);
    }

    public int port() { return server.getLocalPort(); }

    private void accept() {
        while (!closed) {
            try {
                Socket s = server.accept();
                open.add(s);
                // A platform thread: it drives CUDA and NCCL with this GPU's context current.
                Thread.ofPlatform().daemon().name("tandem-kv-device-recv").start(() -> serve(s));
            } catch (IOException e) {
                if (!closed) LOG.warning("device KV server: accept failed: " + e.getMessage());
                return;
            }
        }
    }

    private void serve(Socket s) {
        NcclReceiver receiver = null;
        String peer = "prompt worker at " + s.getRemoteSocketAddress();
        try (s) {
            s.setTcpNoDelay(true);
            DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream()));
            DataOutputStream out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream()));
            if (in.readInt() != RemoteNccl.MAGIC) throw new IOException("not a Tandem NCCL KV connection");
            long blockBytes = in.readLong();
            byte[] id = in.readNBytes(dev.tandem.cuda.Nccl.UNIQUE_ID_BYTES);
            long mine = end.backend().kvBlockBytes(end.kv());
            if (blockBytes != mine) {
                out.writeByte(1);
                out.writeUTF("KV block of " + blockBytes + " bytes from the sender, this worker's blocks have " + mine + " (same model and --precision?)");
                out.flush();
                return;
            }
            out.writeByte(0);
            out.flush();
            receiver = new NcclReceiver(end, peer, hub, NcclReceiver.join(end.backend(), id, NcclReceiver.RECEIVER));
            // A receive that failed here ends the connection: the sender's next message fails, and it rebuilds the path.
            receiver.onFailure(reason -> {
                try {
                    s.setSoLinger(true, 0); // a reset, not an orderly close: the sender's very next write fails
                } catch (IOException ignored) {
                    // closing anyway
                }
                closeQuietly(s);
            });
            while (true) {
                byte type;
                try {
                    type = in.readByte();
                } catch (EOFException e) {
                    return; // the sender closed the path
                }
                long reservation = in.readLong();
                switch (type) {
                    case RemoteNccl.LAYER -> {
                        int layer = in.readInt(), firstIndex = in.readInt(), n = in.readInt();
                        long bytes = in.readLong(), left = in.readLong();
                        receiver.layer(reservation, layer, firstIndex, n, bytes, System.nanoTime() + left);
                    }
                    case RemoteNccl.COMMIT -> {
                        int[] tokens = new int[in.readInt()];
                        for (int i = 0; i < tokens.length; i++) tokens[i] = in.readInt();
                        receiver.commit(reservation, tokens);
                    }
                    case RemoteNccl.ABORT -> receiver.abort(reservation, in.readUTF());
                    default -> throw new IOException("unknown message type " + type);
                }
            }
        } catch (IOException | RuntimeException e) {
            if (!closed) LOG.warning("device KV server: " + peer + ": " + e.getMessage());
            if (receiver != null) receiver.fail("connection from the " + peer + " ended: " + e.getMessage());
        } finally {
            open.remove(s);
            if (receiver != null) receiver.close();
        }
    }

    @Override
    public void close() {
        closed = true;
        // The listening socket, then every connection: each one's receiving rank frees itself as its reads end.
        java.util.stream.Stream.concat(java.util.stream.Stream.of(server), open.stream()).forEach(DeviceKvServer::closeQuietly);
    }

    private static void closeQuietly(java.io.Closeable c) {
        try {
            c.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }
}
