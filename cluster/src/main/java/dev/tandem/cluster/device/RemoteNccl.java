package dev.tandem.cluster.device;

import dev.tandem.cuda.CudaException;
import dev.tandem.cuda.Nccl;
import dev.tandem.cuda.backend.CudaBackend;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;

/**
 * NCCL KV paths between processes: the prompt worker connects to the token worker's KV port ({@link DeviceKvServer}),
 * sends the communicator's unique id and its block size; once the token worker accepted, both join the communicator.
 * The connection then carries, in order, each layer's header (the bytes go over NCCL), the commit and the aborts.
 * Deadlines travel as time left, since the processes' clocks differ.
 */
final class RemoteNccl {
    static final int MAGIC = 0x544e434c; // "TNCL"
    static final byte LAYER = 1, COMMIT = 2, ABORT = 3;

    private RemoteNccl() {}

    /** The sending rank's path to the token worker at {@code address} (HOST:PORT of its KV port). */
    static NcclPath connect(CudaBackend sender, String address, long blockBytes, Duration setupTimeout) {
        int colon = address.lastIndexOf(':');
        if (colon < 0) throw new IllegalArgumentException("KV address '" + address + "' is not HOST:PORT");
        Socket socket = new Socket();
        try {
            socket.connect(new InetSocketAddress(address.substring(0, colon), Integer.parseInt(address.substring(colon + 1))), 5_000);
            socket.setTcpNoDelay(true);
            DataOutputStream out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream()));
            DataInputStream in = new DataInputStream(new BufferedInputStream(socket.getInputStream()));
            byte[] id = Nccl.get().uniqueId();
            out.writeInt(MAGIC);
            out.writeLong(blockBytes);
            out.write(id);
            out.flush();
            socket.setSoTimeout((int) setupTimeout.toMillis());
            if (in.readByte() != 0) throw new CudaException("the KV receiver at " + address + " refused an NCCL path: " + in.readUTF());
            socket.setSoTimeout(0);
            CompletableFuture<MemorySegment[]> rank0 = NcclPath.rank(() -> NcclReceiver.join(sender, id, NcclReceiver.SENDER));
            MemorySegment[] half = NcclPath.await(rank0, setupTimeout, "NCCL set-up from cuda:" + sender.ordinal() + " to " + address);
            return NcclPath.of(address, half, new SocketDeliveries(socket, out));
        } catch (IOException e) {
            try {
                socket.close();
            } catch (IOException ignored) {
                // failing anyway
            }
            throw new java.io.UncheckedIOException("cannot open an NCCL KV path to " + address + ": " + e.getMessage(), e);
        }
    }

    /** Headers, commits and aborts over the connection; closing it tells the receiving rank the path ended (or broke). */
    private record SocketDeliveries(Socket socket, DataOutputStream out) implements NcclPath.Deliveries {
        public void layer(long reservation, int layer, int firstIndex, int n, long bytes, long deadlineNanos) throws IOException {
            out.writeByte(LAYER);
            out.writeLong(reservation);
            out.writeInt(layer);
            out.writeInt(firstIndex);
            out.writeInt(n);
            out.writeLong(bytes);
            out.writeLong(Math.max(0, deadlineNanos - System.nanoTime()));
            out.flush();
        }

        public void commit(long reservation, int[] tokens) throws IOException {
            out.writeByte(COMMIT);
            out.writeLong(reservation);
            out.writeInt(tokens.length);
            for (int t : tokens) out.writeInt(t);
            out.flush();
        }

        public void abort(long reservation, String reason) throws IOException {
            out.writeByte(ABORT);
            out.writeLong(reservation);
            out.writeUTF(reason.length() > 1000 ? reason.substring(0, 1000) : reason);
            out.flush();
        }

        public void fail(String reason) { close(); }

        public void close() {
            try {
                socket.close();
            } catch (IOException ignored) {
                // closed anyway
            }
        }
    }
}
