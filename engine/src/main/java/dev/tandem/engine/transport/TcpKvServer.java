package dev.tandem.engine.transport;

import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The token worker's end of {@link TcpKvTransport}: accepts prompt workers' connections and reads each block
 * straight into the reserved block of the cache (a dropped reservation's bytes are read and discarded).
 */
public final class TcpKvServer implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(TcpKvServer.class.getName());

    private final KvReceiver receiver;
    private final ServerSocketChannel server;
    private final Set<SocketChannel> open = ConcurrentHashMap.newKeySet();
    private final Thread acceptor;
    private volatile boolean closed;

    public TcpKvServer(KvReceiver receiver, String host, int port) throws IOException {
        this.receiver = receiver;
        this.server = ServerSocketChannel.open().bind(new InetSocketAddress(host, port));
        this.acceptor = Thread.ofPlatform().daemon().name("tandem-kv-accept").start(this::accept);
    }

    public int port() { return server.socket().getLocalPort(); }

    private void accept() {
        while (!closed) {
            try {
                SocketChannel ch = server.accept();
                open.add(ch);
                Thread.ofVirtual().name("tandem-kv-recv").start(() -> serve(ch));
            } catch (IOException e) {
                if (!closed) LOG.log(Level.WARNING, "KV server: accept failed", e);
                return;
            }
        }
    }

    private void serve(SocketChannel ch) {
        ByteBuffer header = ByteBuffer.allocate(TcpKvTransport.BLOCK_HEADER);
        ByteBuffer discard = ByteBuffer.allocateDirect(64 << 10);
        try (ch) {
            while (true) {
                header.clear().limit(1 + 8);
                if (!readFully(ch, header, true)) return;
                byte type = header.get(0);
                long reservation = header.getLong(1);
                switch (type) {
                    case TcpKvTransport.BLOCK -> {
                        header.limit(TcpKvTransport.BLOCK_HEADER);
                        readFully(ch, header, false);
                        int layer = header.getInt(9), index = header.getInt(13);
                        long bytes = header.getLong(17);
                        if (bytes != receiver.blockBytes()) {
                            throw new IOException("KV block of " + bytes + " bytes from the sender, this worker's blocks have " + receiver.blockBytes());
                        }
                        boolean written = receiver.write(reservation, layer, index, (k, v) -> {
                            readFully(ch, k.asByteBuffer(), false);
                            readFully(ch, v.asByteBuffer(), false);
                        });
                        if (!written) skip(ch, discard, 2 * bytes);
                    }
                    case TcpKvTransport.COMMIT -> {
                        int n = readInt(ch, header);
                        ByteBuffer b = ByteBuffer.allocate(4 * n);
                        readFully(ch, b, false);
                        int[] tokens = new int[n];
                        b.flip().asIntBuffer().get(tokens);
                        try {
                            receiver.commit(reservation, tokens);
                        } catch (RuntimeException e) {
                            LOG.fine("KV server: commit of reservation " + reservation + " refused: " + e.getMessage());
                        }
                    }
                    case TcpKvTransport.ABORT -> {
                        int n = readInt(ch, header);
                        ByteBuffer b = ByteBuffer.allocate(n);
                        readFully(ch, b, false);
                        receiver.abort(reservation, StandardCharsets.UTF_8.decode(b.flip()).toString());
                    }
                    default -> throw new IOException("KV server: unknown message type " + type);
                }
            }
        } catch (IOException e) {
            if (!closed) LOG.fine("KV server: connection ended: " + e.getMessage());
        } finally {
            open.remove(ch);
        }
    }

    private static int readInt(SocketChannel ch, ByteBuffer header) throws IOException {
        header.clear().limit(4);
        readFully(ch, header, false);
        return header.getInt(0);
    }

    private static void skip(SocketChannel ch, ByteBuffer discard, long bytes) throws IOException {
        while (bytes > 0) {
            discard.clear().limit((int) Math.min(discard.capacity(), bytes));
            readFully(ch, discard, false);
            bytes -= discard.limit();
        }
    }

    /** False at a clean end of stream before the first byte when {@code eofOk}. */
    private static boolean readFully(SocketChannel ch, ByteBuffer b, boolean eofOk) throws IOException {
        boolean first = true;
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                if (eofOk && first) return false;
                throw new EOFException("KV connection closed mid-message");
            }
            first = false;
        }
        return true;
    }

    @Override
    public void close() {
        closed = true;
        try {
            server.close();
        } catch (IOException ignored) {
            // closing anyway
        }
        for (SocketChannel ch : open) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // closing anyway
            }
        }
    }
}
