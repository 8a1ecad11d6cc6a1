package dev.stasis.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.images.ImageType;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Runs upstream crit (a judge in tests only, never product code) on image files and returns its
 * JSON. Two versions are checked where it matters: bookworm's /usr/bin/crit (3.17, drops a few
 * newer fields) and the upstream judge's (CRIU 4.2.1 from Debian sid, installed by
 * .ci/install-judge outside the clone and run through its wrapper in {@code JUDGE/bin}).
 *
 * <p>{@link #decode} gives raw numbers; {@link #show} gives crit's pretty form (hex strings, flag
 * names such as {@code "PE_PRESENT"}, enum names). Any failure is an {@link AssertionError} naming
 * the crit version, the command, the exit code and crit's own error text.
 */
public final class Crit {
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * Where .ci/install-judge put the judges: {@code bin/criu} and {@code bin/crit} (wrappers that
   * run sid's binaries through sid's loader, criu with {@code CRIU_FAULT=130}) and the sid tree.
   */
  public static final Path JUDGE =
      Path.of(
          System.getProperty(
              "stasis.judge", System.getenv().getOrDefault("STASIS_JUDGE", "/opt/stasis-judge")));

  private static final Path SID = JUDGE.resolve("sid");

  /** Which crit to run. */
  public enum Version {
    BOOKWORM,
    UPSTREAM;

    List<String> command() {
      return List.of(this == BOOKWORM ? "/usr/bin/crit" : JUDGE.resolve("bin/crit").toString());
    }

    Path mustExist() {
      Path p = Path.of(command().get(0));
      if (!Files.isRegularFile(p)) {
        throw new AssertionError(
            "crit (" + name().toLowerCase() + ") is not installed at " + p + "; run .ci/setup");
      }
      return p;
    }
  }

  private Crit() {}

  /**
   * The command that runs upstream {@code criu} (for {@code criu dump} / {@code criu restore} as a
   * judge in ITs): the judge's wrapper, which also turns CRIU's hardware breakpoints off.
   */
  public static List<String> criuCommand() {
    Path criu = JUDGE.resolve("bin/criu");
    if (!Files.isRegularFile(criu)) {
      throw new AssertionError("upstream criu is not installed at " + criu + "; run .ci/setup");
    }
    return List.of(criu.toString());
  }

  /**
   * The command that runs the python interpreter crit of {@code v} runs on (sid's through its own
   * loader), with crit's pycriu importable; append {@code -c CODE} to query pycriu directly.
   */
  public static List<String> pythonCommand(Version v) {
    v.mustExist();
    if (v == Version.BOOKWORM) {
      return List.of("/usr/bin/python3");
    }
    // sid's python finds its own stdlib and dist-packages (pycriu, protobuf) relative to its
    // executable; only the loader and the library path must be sid's.
    return List.of(
        SID.resolve("usr/lib64/ld-linux-x86-64.so.2").toString(),
        "--library-path",
        SID.resolve("usr/lib/x86_64-linux-gnu").toString(),
        SID.resolve("usr/bin/python3").toString());
  }

  /** {@code crit decode -i file}: the image as JSON with plain numbers. */
  public static JsonNode decode(Version v, Path file) {
    return json(v, file, run(v, "decode", "-i", file.toString()));
  }

  /** {@code crit show file}: the image as JSON in crit's pretty form. */
  public static JsonNode show(Version v, Path file) {
    return json(v, file, run(v, "show", file.toString()));
  }

  /** {@code crit x DIR what} ("ps", "fds", "mems", "rss"): crit's text view of a whole set. */
  public static String explore(Version v, Path dir, String what) {
    return run(v, "x", dir.toString(), what);
  }

  /**
   * Decodes every framed image file of a directory that crit understands (everything {@link
   * ImageType} models except raw pages), keyed by file name.
   */
  public static Map<String, JsonNode> decodeDir(Version v, Path dir) {
    Map<String, JsonNode> out = new TreeMap<>();
    for (Path f : imageFiles(dir)) {
      out.put(f.getFileName().toString(), decode(v, f));
    }
    return out;
  }

  /** The entries array of a decoded image, failing clearly if it has none. */
  public static JsonNode entries(JsonNode image) {
    JsonNode e = image.get("entries");
    if (e == null || !e.isArray()) {
      throw new AssertionError("crit output has no entries array: " + image);
    }
    return e;
  }

  /**
   * {pages in the pages file (PE_PRESENT), pages in the parent (PE_PARENT)} of a decoded pagemap,
   * failing if its entries overlap, are out of order, or are neither or both.
   */
  public static long[] pagemapPages(JsonNode pagemap) {
    long[] n = new long[2];
    long lastEnd = 0;
    JsonNode entries = entries(pagemap);
    for (int i = 1; i < entries.size(); i++) { // entry 0 is the head (pages_id)
      JsonNode e = entries.get(i);
      long vaddr = number(e.get("vaddr"));
      long pages = number(e.get("nr_pages"));
      if (vaddr < lastEnd) {
        throw new AssertionError("pagemap entries out of address order or overlapping: " + e);
      }
      lastEnd = vaddr + pages * 4096;
      JsonNode f = e.get("flags");
      boolean inParent = f.isNumber() ? (f.asLong() & 1) != 0 : f.asText().contains("PE_PARENT");
      boolean present = f.isNumber() ? (f.asLong() & 4) != 0 : f.asText().contains("PE_PRESENT");
      if (inParent == present) {
        throw new AssertionError("pagemap entry neither or both in the parent and present: " + e);
      }
      n[inParent ? 1 : 0] += pages;
    }
    return n;
  }

  // crit shows addresses as hex strings, counts as numbers
  private static long number(JsonNode n) {
    String s = n.asText();
    return s.startsWith("0x") ? Long.parseLong(s.substring(2), 16) : n.asLong();
  }

  /** Framed image files of {@code dir} (not raw pages, not logs), sorted by name. */
  public static List<Path> imageFiles(Path dir) {
    try (Stream<Path> s = Files.list(dir)) {
      List<Path> files = new ArrayList<>();
      s.sorted()
          .forEach(
              p ->
                  ImageType.ofFileName(p.getFileName().toString())
                      .filter(t -> t.layout() != ImageType.Layout.RAW)
                      .ifPresent(t -> files.add(p)));
      return files;
    } catch (IOException e) {
      throw new AssertionError("cannot list image directory " + dir + ": " + e, e);
    }
  }

  private static JsonNode json(Version v, Path file, String out) {
    try {
      return JSON.readTree(out);
    } catch (IOException e) {
      throw new AssertionError(
          "crit (" + v.name().toLowerCase() + ") printed no JSON for " + file + ": " + head(out),
          e);
    }
  }

  /** Runs crit with {@code args}, returns stdout; fails with crit's stderr on a non-zero exit. */
  public static String run(Version v, String... args) {
    v.mustExist();
    List<String> cmd = new ArrayList<>(v.command());
    cmd.addAll(List.of(args));
    return exec(cmd, "crit (" + v.name().toLowerCase() + ") " + String.join(" ", args));
  }

  /**
   * Runs {@code cmd} with stdin from /dev/null and returns its stdout; fails naming {@code what},
   * the exit code and the end of stderr when it exits non-zero or runs longer than two minutes.
   */
  public static String exec(List<String> cmd, String what) {
    Path outFile = null;
    Path errFile = null;
    try {
      outFile = Files.createTempFile("crit-", ".out");
      errFile = Files.createTempFile("crit-", ".err");
      Process p =
          new ProcessBuilder(cmd)
              .redirectOutput(outFile.toFile())
              .redirectError(errFile.toFile())
              .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
              .start();
      if (!p.waitFor(120, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new AssertionError(what + " timed out after 120 s");
      }
      String out = Files.readString(outFile, StandardCharsets.UTF_8);
      if (p.exitValue() != 0) {
        throw new AssertionError(
            what
                + " failed with exit "
                + p.exitValue()
                + ": "
                + tail(Files.readString(errFile, StandardCharsets.UTF_8)));
      }
      return out;
    } catch (IOException e) {
      throw new AssertionError("cannot run " + what + ": " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted while running " + what, e);
    } finally {
      deleteQuietly(outFile);
      deleteQuietly(errFile);
    }
  }

  private static void deleteQuietly(Path p) {
    if (p != null) {
      try {
        Files.deleteIfExists(p);
      } catch (IOException e) {
        // a leftover temp file is harmless
      }
    }
  }

  private static String tail(String s) {
    String t = s.strip();
    return t.length() > 2000 ? "..." + t.substring(t.length() - 2000) : t;
  }

  private static String head(String s) {
    String t = s.strip();
    return t.length() > 500 ? t.substring(0, 500) + "..." : t;
  }
}
