package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The launcher's start-up archive: the hidden {@code cds-train} command really dumps (so the
 * archive holds the dump path's classes, not only those of whatever command ran first), and a JVM
 * started on the archive loads the agent's classes from it.
 */
class StartupArchiveIT {

  private static String run(String... args) throws IOException, InterruptedException {
    String jar = System.getProperty("stasis.jar", "target/stasis-node-agent.jar");
    List<String> cmd = new ArrayList<>(List.of("java", "-XX:+UseSerialGC"));
    cmd.addAll(List.of(args).subList(0, args.length - 1));
    cmd.addAll(List.of("-jar", jar, args[args.length - 1]));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "timed out: " + cmd);
    assertEquals(0, p.exitValue(), out);
    return out;
  }

  @Test
  void trainingDumpsAndTheArchiveServesTheDumpClasses() throws Exception {
    Path jsa = Files.createDirectories(Path.of("target/it")).resolve("train.jsa").toAbsolutePath();
    Files.deleteIfExists(jsa);
    String out = run("-XX:ArchiveClassesAtExit=" + jsa, "-Xlog:disable", "cds-train");
    assertTrue(out.contains("cds-train: dumped and verified PID "), out);
    assertTrue(Files.size(jsa) > 4 << 20, "archive of " + Files.size(jsa) + " bytes");

    String log = run("-XX:SharedArchiveFile=" + jsa, "-Xlog:class+load=info", "--version");
    assertTrue(
        log.contains("dev.stasis.cli.Main source: shared objects file (top)"),
        "Main not served by the archive:\n"
            + log.lines().filter(l -> l.contains("dev.stasis")).toList());
    Files.delete(jsa);
  }
}
