package dev.tandem.server.chat;

/** The chat template could not render the conversation (a raise_exception call or a template error): HTTP 400. */
public final class ChatTemplateException extends RuntimeException {
    public ChatTemplateException(String problem) { super("chat template: " + problem); }
}
