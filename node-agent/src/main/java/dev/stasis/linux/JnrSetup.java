package dev.stasis.linux;

import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * How JNR is set up before the C library is bound: both choices are start-up time, which every
 * command pays before it can do anything (a dump before it can seize its target).
 *
 * <ul>
 *   <li>Invokers by reflection ({@code jnr.ffi.asm.enabled=false}). By default JNR generates the
 *       bytecode and machine-code stubs of every function of {@link LibC} when the library is
 *       bound: 75 ms for five functions, 130-160 ms for ours, in a short-lived JVM. Reflection
 *       binds in ~20 ms, sets each function up on its first call (well under a millisecond), and
 *       costs ~170 ns more per call, which a dump's few thousand calls do not notice.
 *   <li>jffi's native library from {@code lib/native} next to our jar when the build unpacked it
 *       there. Otherwise jffi extracts it from its jar into {@code java.io.tmpdir} on every start
 *       (~15 ms, and it fails where that directory is read-only or mounted noexec, as it may well
 *       be in a hardened container).
 * </ul>
 *
 * Properties already set (on the command line) are left alone.
 */
final class JnrSetup {
  /** Where the build unpacks com.github.jnr:jffi:native (node-agent/pom.xml, unpack-jffi). */
  static final String NATIVE_DIR = "lib/native/jni/x86_64-Linux";

  private JnrSetup() {}

  static void configure() {
    if (System.getProperty("jnr.ffi.asm.enabled") == null) {
      System.setProperty("jnr.ffi.asm.enabled", "false");
    }
    if (System.getProperty("jffi.boot.library.path") == null) {
      Path dir = nativeDir();
      if (dir != null) {
        System.setProperty("jffi.boot.library.path", dir.toString());
      }
    }
  }

  /** lib/native/... beside the jar (or beside target/classes), if the library is there. */
  static Path nativeDir() {
    try {
      var src = JnrSetup.class.getProtectionDomain().getCodeSource();
      if (src == null) {
        return null;
      }
      Path here = Path.of(src.getLocation().toURI());
      Path dir = here.resolveSibling(NATIVE_DIR);
      try (var files = Files.list(dir)) {
        return files.anyMatch(p -> p.getFileName().toString().startsWith("libjffi")) ? dir : null;
      }
    } catch (URISyntaxException | java.io.IOException | SecurityException e) {
      return null; // jffi falls back to extracting its library
    }
  }
}
