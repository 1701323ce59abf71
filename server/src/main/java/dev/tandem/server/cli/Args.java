package dev.tandem.server.cli;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Command-line options of one subcommand: {@code --name value}, {@code --name=value}, boolean {@code --flag}s
 * and positional words. Unknown options and malformed values are usage errors that name the option.
 */
public final class Args {
    private final String command;
    private final Map<String, String> values = new HashMap<>();
    private final List<String> positional = new ArrayList<>();

    /**
     * @param valued options that take a value (with their help text)
     * @param flags  options that take none
     */
    public Args(String command, String[] argv, Map<String, String> valued, Map<String, String> flags) {
        this.command = command;
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i];
            if (a.startsWith("--") && a.length() > 2) {
                String name = a.substring(2), value = null;
                int eq = name.indexOf('=');
                if (eq >= 0) {
                    value = name.substring(eq + 1);
                    name = name.substring(0, eq);
                }
                if (flags.containsKey(name)) {
                    if (value != null) throw usage("--" + name + " takes no value");
                    values.put(name, "true");
                } else if (valued.containsKey(name)) {
                    if (value == null) {
                        if (i + 1 >= argv.length) throw usage("--" + name + " needs a value");
                        value = argv[++i];
                    }
                    values.put(name, value);
                } else {
                    Set<String> known = new java.util.TreeSet<>(valued.keySet());
                    known.addAll(flags.keySet());
                    throw usage("unknown option --" + name + " (known: --" + String.join(", --", known) + ")");
                }
            } else if (a.startsWith("-") && a.length() > 1 && !isNumber(a) && valued.containsKey(a.substring(1))) {
                // llama-bench style short options: -p 512 -n 128 -r 5
                if (i + 1 >= argv.length) throw usage(a + " needs a value");
                values.put(a.substring(1), argv[++i]);
            } else {
                positional.add(a);
            }
        }
    }

    private static boolean isNumber(String s) {
        try {
            Double.parseDouble(s);
            return true;
        } catch (NumberFormatException e) {
            return false;
        }
    }

    public UsageException usage(String message) { return new UsageException(command + ": " + message); }

    public boolean has(String name) { return values.containsKey(name); }

    public boolean flag(String name) { return values.containsKey(name); }

    public String string(String name, String def) { return values.getOrDefault(name, def); }

    public String required(String name) {
        String v = values.get(name);
        if (v == null) throw usage("--" + name + " is required");
        return v;
    }

    public int integer(String name, int def) {
        String v = values.get(name);
        if (v == null) return def;
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw usage("--" + name + " expects an integer, got '" + v + "'");
        }
    }

    /** A comma-separated list of positive integers; an empty value is an empty list. */
    public int[] positiveIntegers(String name, String def) { return integers(name, def, 1, "positive"); }

    /** A comma-separated list of integers >= 0; an empty value is an empty list. */
    public int[] nonNegativeIntegers(String name, String def) { return integers(name, def, 0, "non-negative"); }

    private int[] integers(String name, String def, int min, String what) {
        String v = string(name, def).trim();
        if (v.isEmpty()) return new int[0];
        String[] parts = v.split(",");
        int[] out = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                out[i] = Integer.parseInt(parts[i].trim());
                if (out[i] < min) throw new NumberFormatException();
            } catch (NumberFormatException e) {
                throw usage("--" + name + " expects " + what + " integers separated by commas, got '" + v + "'");
            }
        }
        return out;
    }

    public long longValue(String name, long def) {
        String v = values.get(name);
        if (v == null) return def;
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw usage("--" + name + " expects an integer, got '" + v + "'");
        }
    }

    public float number(String name, float def) {
        String v = values.get(name);
        if (v == null) return def;
        try {
            float f = Float.parseFloat(v.trim());
            if (!Float.isFinite(f)) throw new NumberFormatException();
            return f;
        } catch (NumberFormatException e) {
            throw usage("--" + name + " expects a number, got '" + v + "'");
        }
    }

    /** A size in bytes: a plain number or one with a K, M, G or T suffix (powers of 1024; "512M", "2G", "1.5G"). */
    public long bytes(String name, long def) {
        String v = values.get(name);
        if (v == null) return def;
        String t = v.trim().toUpperCase(java.util.Locale.ROOT);
        if (t.endsWith("IB")) t = t.substring(0, t.length() - 2);
        else if (t.endsWith("B")) t = t.substring(0, t.length() - 1);
        long unit = 1;
        if (!t.isEmpty()) {
            int shift = "KMGT".indexOf(t.charAt(t.length() - 1));
            if (shift >= 0) {
                unit = 1L << (10 * (shift + 1));
                t = t.substring(0, t.length() - 1);
            }
        }
        try {
            double n = Double.parseDouble(t.trim());
            if (!(n > 0) || Double.isInfinite(n) || n * unit >= Long.MAX_VALUE) throw new NumberFormatException();
            return (long) (n * unit);
        } catch (NumberFormatException e) {
            throw usage("--" + name + " expects a size such as 512M or 2G, got '" + v + "'");
        }
    }

    public List<String> positional() { return positional; }

    /** Ordered option table builder, so help text lists options in a readable order. */
    public static Map<String, String> options(String... nameHelpPairs) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < nameHelpPairs.length; i += 2) m.put(nameHelpPairs[i], nameHelpPairs[i + 1]);
        return m;
    }

    /** A mistake in how a command was called: printed without a stack trace, exit code 2. */
    public static final class UsageException extends RuntimeException {
        public UsageException(String message) { super(message); }
    }
}
