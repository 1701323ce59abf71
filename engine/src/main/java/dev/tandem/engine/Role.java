package dev.tandem.engine;

/** What a worker's scheduler accepts: prefills only (PROMPT), decodes only (TOKEN), or both (MIXED). */
public enum Role { PROMPT, TOKEN, MIXED }
