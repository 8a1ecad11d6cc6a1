package dev.stasis.dump;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * A terminal of the test's own: script(1) runs {@code command} under bash on a fresh pty, whose
 * master script holds; what the test types goes in through script's stdin, what appears on the
 * terminal collects in a file. The command's processes are grandchildren of the JVM (script's shell
 * forks them), so the JDK's reaper never sees their ptrace stops.
 */
final class ScriptTerminal implements AutoCloseable {
  private final Process script;
  private final OutputStream keys;
  private final Path screen;

  private ScriptTerminal(Process script, Path screen) {
    this.script = script;
    this.keys = script.getOutputStream();
    this.screen = screen;
  }

  static ScriptTerminal run(Path screen, String command) throws IOException {
    ProcessBuilder pb = new ProcessBuilder("script", "-qfec", command, "/dev/null");
    pb.environment().put("SHELL", "/bin/bash");
    Process p = pb.redirectErrorStream(true).redirectOutput(screen.toFile()).start();
    return new ScriptTerminal(p, screen);
  }

  /** Types {@code text} on the terminal. */
  void type(String text) throws IOException {
    keys.write(text.getBytes(StandardCharsets.US_ASCII));
    keys.flush();
  }

  /** Everything the terminal showed so far. */
  String screen() throws IOException {
    return Files.readString(screen, StandardCharsets.ISO_8859_1);
  }

  /** Waits (bounded) until the terminal shows {@code text}; returns whether it did. */
  boolean awaitShown(String text, int seconds) throws IOException, InterruptedException {
    for (int i = 0; i < seconds * 40; i++) {
      if (screen().contains(text)) {
        return true;
      }
      Thread.sleep(25);
    }
    return screen().contains(text);
  }

  @Override
  public void close() throws InterruptedException {
    script.descendants().forEach(ProcessHandle::destroyForcibly);
    script.destroyForcibly();
    script.waitFor(10, TimeUnit.SECONDS);
  }
}
