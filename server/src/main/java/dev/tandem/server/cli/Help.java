package dev.tandem.server.cli;

import java.util.Map;

/** Prints a command's options. */
final class Help {
    private Help() {}

    static int print(String synopsis, Map<String, String> valued, Map<String, String> flags) {
        StringBuilder sb = new StringBuilder("usage: tandem ").append(synopsis).append("\n\noptions:\n");
        valued.forEach((k, v) -> sb.append(String.format("  --%-18s %s%n", k + " X", v)));
        flags.forEach((k, v) -> sb.append(String.format("  --%-18s %s%n", k, v)));
        System.out.print(sb);
        return 0;
    }
}
