package dev.tandem.engine.transport;

import dev.tandem.core.backend.KvStorage;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Hand-overs between JVMs over TCP. One connection per token worker carries every stream to it in order; a
 * block is written with a gathering write straight from the prompt worker's cache segments, and the receiving
 * {@link TcpKvServer} reads it straight into the reserved block. A watchdog closes a connection whose send is
 * stuck past its deadline, so that a dead peer fails the transfers instead of hanging them.
 */
public final class TcpKvTransport implements KvTransport {
    static final byte BLOCK = 1, COMMIT = 2, ABORT = 3;
    static final int BLOCK_HEADER = 1 + 8 + 4 + 4 + 8;

    private final Map<String, Connection> connections = new ConcurrentHashMap<>();
    private final KvTransferStats stats = new KvTransferStats();
    private final int connectTimeoutMillis;
    private final Thread watchdog;
    private volatile boolean closed;

    public TcpKvTransport(int connectTimeoutMillis) {
        this.connectTimeoutMillis = connectTimeoutMillis;
        this.watchdog = Thread.ofPlatform().daemon().name("tandem-kv-watchdog").start(this::watch);
    }

    @Override
    public KvStream open(String address, long reservation, KvStorage cache, long deadlineNanos) {
        HostKv.of(cache); // refuses a device cache, saying why
        Connection c = connections.compute(address, (a, old) -> old != null && old.usable() ? old : connect(a));
        return c.stream(reservation, cache, deadlineNanos);
    }

    private Connection connect(String address) {
        int colon = address.lastIndexOf(':');
        if (colon < 0) throw new IllegalArgumentException("KV address '" + address + "' is not HOST:PORT");
        try {
            SocketChannel ch = SocketChannel.open();
            ch.socket().connect(new InetSocketAddress(address.substring(0, colon), Integer.parseInt(address.substring(colon + 1))), connectTimeoutMillis);
            ch.setOption(java.net.StandardSocketOptions.TCP_NODELAY, true);
            return new Connection(address, ch);
        } catch (IOException e) {
            // Unchecked I/O, so that callers tell a broken path to the token worker from a refusal by this worker.
            throw new java.io.UncheckedIOException("cannot connect to the KV receiver at " + address + ": " + e.getMessage(), e);
        }
    }

    @Override
    public KvTransferStats stats() { return stats; }

    private void watch() {
        while (!closed) {
            long now = System.nanoTime();
            for (Connection c : connections.values()) {
                long until = c.busyUntil;
                if (until != 0 && now - until > 0) c.close(); // the stuck write fails with an IOException
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        watchdog.interrupt();
        connections.values().forEach(Connection::close);
        connections.clear();
    }

    private final class Connection extends HostKvChannel {
        private final SocketChannel ch;
        private final ByteBuffer header = ByteBuffer.allocate(BLOCK_HEADER);

        Connection(String address, SocketChannel ch) {
            super(address, stats);
            this.ch = ch;
        }

        @Override
        public boolean usable() { return super.usable() && ch.isOpen(); }

        @Override
        protected void block(long reservation, int layer, int index, MemorySegment keys, MemorySegment values) throws IOException {
            header.clear().put(BLOCK).putLong(reservation).putInt(layer).putInt(index).putLong(keys.byteSize()).flip();
            ByteBuffer[] parts = {header, keys.asByteBuffer(), values.asByteBuffer()};
            long total = header.remaining() + 2 * keys.byteSize();
            for (long sent = 0; sent < total; ) sent += ch.write(parts);
        }

        @Override
        protected void commit(long reservation, int[] tokens) throws IOException {
            ByteBuffer b = ByteBuffer.allocate(1 + 8 + 4 + 4 * tokens.length).put(COMMIT).putLong(reservation).putInt(tokens.length);
            for (int t : tokens) b.putInt(t);
            writeFully(b.flip());
        }

        @Override
        protected void abort(long reservation, String reason) throws IOException {
            byte[] text = reason.getBytes(StandardCharsets.UTF_8);
            writeFully(ByteBuffer.allocate(1 + 8 + 4 + text.length).put(ABORT).putLong(reservation).putInt(text.length).put(text).flip());
        }

        private void writeFully(ByteBuffer b) throws IOException {
            while (b.hasRemaining()) ch.write(b);
        }

        @Override
        public void close() {
            super.close();
            try {
                ch.close();
            } catch (IOException ignored) {
                // closing anyway
            }
        }
    }
}
