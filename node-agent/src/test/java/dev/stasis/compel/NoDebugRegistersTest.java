package dev.stasis.compel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The product never relies on hardware breakpoints: on some VMs of this kind they never fire (the
 * reason upstream CRIU runs with CRIU_FAULT=130 here). Injected code ends in a software trap; no
 * source of the agent (Java or the parasite's C) may write the debug registers.
 */
class NoDebugRegistersTest {
  private static final Pattern DEBUG_REGS =
      Pattern.compile("POKEUSER|u_debugreg|debugreg|\\bDR[0-7]\\b|offsetof\\(struct user, u_debug");

  @Test
  void noSourceWritesTheDebugRegisters() throws IOException {
    Path main = Path.of("src/main");
    List<Path> sources;
    try (Stream<Path> s = Files.walk(main)) {
      sources =
          s.filter(Files::isRegularFile)
              .filter(p -> p.toString().matches(".*\\.(java|c|h|S|lds)$"))
              .toList();
    }
    assertTrue(sources.size() > 50, "the agent's sources were found: " + sources.size());
    List<String> hits =
        sources.stream()
            .filter(
                p -> {
                  try {
                    return DEBUG_REGS.matcher(Files.readString(p, StandardCharsets.UTF_8)).find();
                  } catch (IOException e) {
                    throw new AssertionError(e);
                  }
                })
            .map(Path::toString)
            .toList();
    assertEquals(List.of(), hits, "sources that touch the debug registers");
  }
}
