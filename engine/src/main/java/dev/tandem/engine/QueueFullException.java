package dev.tandem.engine;

/** The waiting queue is at its bound (EngineConfig.maxQueue): the server answers 429. */
public final class QueueFullException extends RuntimeException {
    public QueueFullException(int limit) { super("the engine's waiting queue is full (" + limit + " requests); try again later"); }
}
