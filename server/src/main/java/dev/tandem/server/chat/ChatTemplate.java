package dev.tandem.server.chat;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import dev.tandem.server.api.ChatMessage;

import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Turns a conversation into prompt text. A model's own template (tokenizer_config.json chat_template, a Jinja
 * string) is rendered with Jinjava as Hugging Face does: trim_blocks and lstrip_blocks on, with {@code messages},
 * {@code add_generation_prompt=true}, {@code bos_token}, {@code eos_token} and a {@code raise_exception(msg)} function.
 * A model without one gets {@link #PLAIN}: "role: content\n" per message, then "assistant: ".
 */
public final class ChatTemplate {
    /** The documented fallback for models without a chat template. */
    public static final ChatTemplate PLAIN = new ChatTemplate(null, "", "");

    /** Jinja2's semantics where Jinjava's defaults differ: {{- -}} trimming, filter precedence, string escapes. */
    private static final LegacyOverrides JINJA2 = LegacyOverrides.newBuilder()
            .withUseTrimmingForNotesAndExpressions(true)
            .withUseNaturalOperatorPrecedence(true)
            .withParseWhitespaceControlStrictly(true)
            .withEvaluateMapKeys(true)
            .withIterateOverMapKeys(true)
            .withUsePyishObjectMapper(true)
            .withKeepNullableLoopValues(true)
            .withHandleBackslashInQuotesOnly(true)
            .build();

    private final String source;
    private final String bosToken;
    private final String eosToken;
    private final Jinjava jinjava;

    private ChatTemplate(String source, String bosToken, String eosToken) {
        this.source = source;
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        if (source == null) {
            this.jinjava = null;
        } else {
            this.jinjava = new Jinjava(JinjavaConfig.newBuilder().withTrimBlocks(true).withLstripBlocks(true).withMaxOutputSize(16L << 20)
                    .withLegacyOverrides(JINJA2).build());
            jinjava.getGlobalContext().registerFunction(function("raise_exception", "raiseException", String.class));
            jinjava.getGlobalContext().registerFunction(function("strftime_now", "strftimeNow", String.class));
        }
    }

    /** A Jinja template with the model's BOS / EOS strings (empty when unknown). */
    public static ChatTemplate jinja(String source, Optional<String> bosToken, Optional<String> eosToken) {
        return new ChatTemplate(source, bosToken.orElse(""), eosToken.orElse(""));
    }

    public boolean isPlain() { return source == null; }

    public String bosToken() { return bosToken; }

    /** The prompt text for {@code messages}, ending where the assistant's reply starts. */
    public String render(List<ChatMessage> messages) {
        if (source == null) {
            StringBuilder sb = new StringBuilder();
            for (ChatMessage m : messages) sb.append(m.role()).append(": ").append(m.content()).append('\n');
            return sb.append("assistant: ").toString();
        }
        List<Map<String, Object>> list = new ArrayList<>();
        for (ChatMessage m : messages) {
            Map<String, Object> map = new LinkedHashMap<>();
            map.put("role", m.role());
            map.put("content", m.content());
            list.add(map);
        }
        Map<String, Object> context = new HashMap<>();
        context.put("messages", list);
        context.put("add_generation_prompt", true);
        context.put("bos_token", bosToken);
        context.put("eos_token", eosToken);
        RenderResult result;
        try {
            result = jinjava.renderForResult(source, context);
        } catch (RuntimeException e) {
            throw new ChatTemplateException(problem(e));
        }
        for (TemplateError error : result.getErrors()) {
            if (error.getSeverity() == TemplateError.ErrorType.FATAL) {
                String message = error.getException() != null ? problem(error.getException()) : error.getMessage();
                throw new ChatTemplateException(message + (error.getLineno() > 0 ? " (template line " + error.getLineno() + ")" : ""));
            }
        }
        return result.getOutput();
    }

    /** The innermost message: a raise_exception(...) from the template reads as the template author wrote it. */
    private static String problem(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof RaisedException) return t.getMessage();
        }
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) root = root.getCause();
        return root.getMessage() != null ? root.getMessage() : root.toString();
    }

    private static ELFunctionDefinition function(String name, String method, Class<?>... params) {
        return new ELFunctionDefinition("", name, ChatTemplate.class, method, params);
    }

    /** raise_exception(message) inside a template: the conversation does not fit the template's rules. */
    public static Object raiseException(String message) {
        throw new RaisedException(message);
    }

    /** strftime_now(format), used by some Llama 3 templates for the date line (common strftime fields only). */
    public static String strftimeNow(String format) {
        LocalDateTime now = LocalDateTime.now();
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                sb.append(c);
                continue;
            }
            char f = format.charAt(++i);
            sb.append(switch (f) {
                case 'd' -> String.format("%02d", now.getDayOfMonth());
                case 'm' -> String.format("%02d", now.getMonthValue());
                case 'Y' -> String.valueOf(now.getYear());
                case 'y' -> String.format("%02d", now.getYear() % 100);
                case 'b' -> now.format(DateTimeFormatter.ofPattern("MMM", java.util.Locale.ENGLISH));
                case 'B' -> now.format(DateTimeFormatter.ofPattern("MMMM", java.util.Locale.ENGLISH));
                case 'H' -> String.format("%02d", now.getHour());
                case 'M' -> String.format("%02d", now.getMinute());
                case 'S' -> String.format("%02d", now.getSecond());
                case '%' -> "%";
                default -> "%" + f;
            });
        }
        return sb.toString();
    }

    private static final class RaisedException extends RuntimeException {
        RaisedException(String message) { super(message); }
    }
}
