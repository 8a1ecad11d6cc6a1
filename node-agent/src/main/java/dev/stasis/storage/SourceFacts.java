package dev.stasis.storage;

import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What the store learns about the machine by itself for the manifest's source section: node name,
 * kernel release, CPU model and flags. Facts the dump records under the same keys take precedence.
 */
final class SourceFacts {
  private SourceFacts() {}

  static Map<String, String> learn() {
    Map<String, String> m = new LinkedHashMap<>();
    String node = System.getenv("NODE_NAME");
    if (node == null) {
      node = read("/proc/sys/kernel/hostname");
    }
    if (node == null) {
      try {
        node = InetAddress.getLocalHost().getHostName();
      } catch (IOException e) {
        node = null;
      }
    }
    put(m, "node", node);
    put(m, "kernel.release", read("/proc/sys/kernel/osrelease"));
    put(m, "arch", System.getProperty("os.arch"));
    try {
      for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
        int c = line.indexOf(':');
        if (c < 0) {
          continue;
        }
        String k = line.substring(0, c).trim();
        String v = line.substring(c + 1).trim();
        if (k.equals("model name") && !m.containsKey("cpu.model")) {
          m.put("cpu.model", v);
        } else if (k.equals("flags") && !m.containsKey("cpu.flags")) {
          m.put("cpu.flags", v);
        }
        if (m.containsKey("cpu.model") && m.containsKey("cpu.flags")) {
          break;
        }
      }
    } catch (IOException e) {
      // not Linux or no procfs: the manifest simply lacks the CPU facts
    }
    return m;
  }

  private static void put(Map<String, String> m, String k, String v) {
    if (v != null && !v.isBlank()) {
      m.put(k, v.strip());
    }
  }

  private static String read(String p) {
    try {
      return Files.readString(Path.of(p)).strip();
    } catch (IOException e) {
      return null;
    }
  }
}
