package dev.tandem.cluster.rpc;

import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.grpc.MethodDescriptor;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/**
 * The worker service of the control plane, "tandem.Worker": gRPC methods whose messages are the records of
 * {@link Messages} written as JSON, so the build needs no protoc step and the messages stay readable in a capture.
 */
public final class WorkerRpc {
    private WorkerRpc() {}

    public static final String SERVICE = "tandem.Worker";

    static final ObjectMapper JSON = JsonMapper.builder()
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS) // logprobs are NaN when not asked for
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .build();

    public static final MethodDescriptor<Messages.Empty, Messages.Info> INFO = unary("Info", Messages.Empty.class, Messages.Info.class);
    public static final MethodDescriptor<Messages.Empty, Messages.ModelInfo> MODEL = unary("Model", Messages.Empty.class, Messages.ModelInfo.class);
    public static final MethodDescriptor<Messages.SetRole, Messages.Empty> SET_ROLE = unary("SetRole", Messages.SetRole.class, Messages.Empty.class);
    public static final MethodDescriptor<Messages.Recompute, Messages.Empty> RECOMPUTE = unary("Recompute", Messages.Recompute.class, Messages.Empty.class);
    public static final MethodDescriptor<Messages.Submit, Messages.Event> SUBMIT = MethodDescriptor.<Messages.Submit, Messages.Event>newBuilder()
            .setType(MethodDescriptor.MethodType.SERVER_STREAMING)
            .setFullMethodName(MethodDescriptor.generateFullMethodName(SERVICE, "Submit"))
            .setRequestMarshaller(new Json<>(Messages.Submit.class))
            .setResponseMarshaller(new Json<>(Messages.Event.class))
            .build();

    private static <A, B> MethodDescriptor<A, B> unary(String name, Class<A> req, Class<B> res) {
        return MethodDescriptor.<A, B>newBuilder()
                .setType(MethodDescriptor.MethodType.UNARY)
                .setFullMethodName(MethodDescriptor.generateFullMethodName(SERVICE, name))
                .setRequestMarshaller(new Json<>(req))
                .setResponseMarshaller(new Json<>(res))
                .build();
    }

    private record Json<T>(Class<T> type) implements MethodDescriptor.Marshaller<T> {
        @Override
        public InputStream stream(T value) {
            try {
                return new ByteArrayInputStream(JSON.writeValueAsBytes(value));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        @Override
        public T parse(InputStream stream) {
            try {
                return JSON.readValue(stream, type);
            } catch (IOException e) {
                throw new UncheckedIOException("control plane: bad " + type.getSimpleName() + " message: " + e.getMessage(), e);
            }
        }
    }
}
