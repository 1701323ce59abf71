package dev.tandem.server.api;

/** One message of a chat: role (system, user, assistant, ...) and its text (parts of type "text" joined). */
public record ChatMessage(String role, String content) {}
