package dev.stasis.dump;

import static dev.stasis.testing.Logs.read;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.testing.Crit;
import dev.stasis.testing.Exec;
import dev.stasis.testing.RuncContainer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ./stasis dump --archive FILE.tar --bundle B --rootfs-lower L} of a runc container writes
 * the container checkpoint archive Podman, CRI-O and containerd export, and checkpointctl 1.3.0
 * (the judge's) reads it: {@code show} and {@code inspect --all} exit 0 and print the container's
 * id and runtime, its process (with its command line and environment, read from the dumped memory),
 * its mounts (from spec.dump), the dump statistics, and sizes equal to the archive's own. The
 * archive's rootfs-diff.tar holds exactly the file the container wrote into its root, and
 * deleted.files the one it removed, relative to the lower directory the bundle was made from.
 */
class CheckpointArchiveIT {
  private static final Path CHECKPOINTCTL = Crit.JUDGE.resolve("bin/checkpointctl");
  private static final Duration BOUND = Duration.ofSeconds(60);

  @TempDir Path work;

  @Test
  void checkpointctlReadsTheArchiveOfARuncContainer() throws Exception {
    String token = "arch-" + UUID.randomUUID().toString().substring(0, 8);
    // It waits for /tmp/go (so the lower copy is taken before it writes), then changes its root:
    // one new file, one removed; then counts.
    String script =
        "while [ ! -e /tmp/go ]; do read -t 0.1 x; done; rm /tmp/go; echo "
            + token
            + " > /tmp/"
            + token
            + "; rm /bin/cat; echo ready; i=0; while :; do read -t 0.1 x; i=$((i+1)); echo $i;"
            + " done";
    try (RuncContainer ctr = RuncContainer.start(work, script)) {
      Path bundle = ctr.log().getParent();
      Path lower = work.resolve("lower");
      Exec.ok(BOUND, List.of("cp", "-a", bundle.resolve("rootfs").toString(), lower.toString()));
      Files.writeString(bundle.resolve("rootfs/tmp/go"), "");
      awaitLine(ctr.log(), "ready");

      Path archive = work.resolve("ckpt.tar");
      String out =
          Exec.ok(
              Duration.ofSeconds(120),
              List.of(
                  Path.of("..", "stasis").toAbsolutePath().normalize().toString(),
                  "dump",
                  "--pid",
                  Integer.toString(ctr.hostPid()),
                  "--archive",
                  archive.toString(),
                  "--bundle",
                  bundle.toString(),
                  "--rootfs-lower",
                  lower.toString(),
                  "--container-id",
                  ctr.id()));
      // stderr shares the output: the start-up sweep may first report another dump in progress
      // on this machine ("stasis: sweep: pid N is traced by M")
      assertTrue(out.lines().anyMatch(l -> l.startsWith("dumped PID " + ctr.hostPid() + " ")), out);
      assertTrue(out.contains("archive " + archive + " written"), out);
      Matcher pages = Pattern.compile("threads, ([0-9]+) pages\\)").matcher(out);
      assertTrue(pages.find(), out);
      try (Stream<Path> left = Files.list(work)) {
        assertEquals(
            List.of(),
            left.filter(p -> p.getFileName().toString().startsWith(".ckpt.tar")).toList(),
            "no images directory or partial archive is left next to the archive");
      }

      // What the archive holds, unpacked by tar.
      Path x = Files.createDirectories(work.resolve("unpacked"));
      Exec.ok(BOUND, List.of("tar", "-C", x.toString(), "-xf", archive.toString()));
      for (String f : List.of("config.dump", "spec.dump", "stats-dump", "deleted.files")) {
        assertTrue(Files.isRegularFile(x.resolve(f)), f + " in the archive");
      }
      ObjectMapper json = new ObjectMapper();
      JsonNode config = json.readTree(x.resolve("config.dump").toFile());
      assertEquals(ctr.id(), config.get("id").asText());
      assertEquals("runc", config.get("runtime").asText());
      assertEquals(
          json.readTree(bundle.resolve("config.json").toFile()),
          json.readTree(x.resolve("spec.dump").toFile()),
          "spec.dump is the bundle's OCI spec");
      assertEquals(
          List.of("bin/cat"),
          json.convertValue(json.readTree(x.resolve("deleted.files").toFile()), List.class));
      Path diff = Files.createDirectories(work.resolve("diff"));
      Exec.ok(
          BOUND,
          List.of("tar", "-C", diff.toString(), "-xf", x.resolve("rootfs-diff.tar").toString()));
      try (Stream<Path> s = Files.walk(diff)) {
        assertEquals(
            List.of("tmp/" + token),
            s.filter(Files::isRegularFile).map(p -> diff.relativize(p).toString()).toList(),
            "the diff holds the one file the container wrote");
      }
      assertEquals(token + "\n", Files.readString(diff.resolve("tmp/" + token)));
      long checkpointSize = 0;
      long pagesSize = 0;
      try (Stream<Path> s = Files.list(x.resolve("checkpoint"))) {
        for (Path p : s.toList()) {
          checkpointSize += Files.size(p);
          if (p.getFileName().toString().startsWith("pages-")) {
            pagesSize += Files.size(p);
          }
        }
      }
      long diffSize = Files.size(x.resolve("rootfs-diff.tar"));

      String show = Exec.ok(BOUND, List.of(CHECKPOINTCTL.toString(), "show", archive.toString()));
      System.out.println("checkpointctl show:\n" + show);
      String row =
          show.lines().filter(l -> l.contains(ctr.id().substring(0, 12))).findFirst().orElse("");
      assertTrue(row.contains(" runc "), show);
      assertTrue(row.contains(bytes(checkpointSize)), "checkpoint size " + bytes(checkpointSize));
      assertTrue(row.contains(bytes(diffSize)), "rootfs diff size " + bytes(diffSize));

      String inspect =
          Exec.ok(BOUND, List.of(CHECKPOINTCTL.toString(), "inspect", "--all", archive.toString()));
      System.out.println("checkpointctl inspect --all:\n" + inspect);
      assertTrue(inspect.contains("ID: " + ctr.id()), inspect);
      assertTrue(inspect.contains("Runtime: runc"), inspect);
      assertTrue(inspect.contains("Checkpoint size: " + bytes(checkpointSize)), inspect);
      assertTrue(inspect.contains("Memory pages size: " + bytes(pagesSize)), inspect);
      assertTrue(inspect.contains("Root FS diff size: " + bytes(diffSize)), inspect);
      assertTrue(inspect.contains("Pages written: " + pages.group(1)), inspect);
      // The one process, PID 1 in its namespace, its command line read from the dumped memory.
      List<String> procs = inspect.lines().filter(l -> l.matches(".*\\[[0-9]+\\] .*")).toList();
      assertEquals(1, procs.size(), inspect);
      assertTrue(
          procs.get(0).contains("[1]  /bin/busybox sh -c while [ ! -e /tmp/go ]"), procs.get(0));
      assertTrue(inspect.contains("HOME=/"), "its environment: " + inspect);
      assertTrue(inspect.contains("[PIPE 1]"), "its stdout pipe: " + inspect);
      for (JsonNode m : json.readTree(bundle.resolve("config.json").toFile()).get("mounts")) {
        assertTrue(
            inspect.contains("Destination: " + m.get("destination").asText() + "\n"),
            m + " in " + inspect);
      }
      assertFalse(inspect.contains("Error"), inspect);

      // The archive alone brings the container back: a new bundle made of the lower directory,
      // rootfs-diff.tar applied, deleted.files removed, spec.dump as config.json; runc restores
      // checkpoint/ into it.
      ctr.delete();
      Path nb = Files.createDirectories(work.resolve("from-archive"));
      Exec.ok(BOUND, List.of("cp", "-a", lower.toString(), nb.resolve("rootfs").toString()));
      Exec.ok(
          BOUND,
          List.of(
              "tar",
              "-C",
              nb.resolve("rootfs").toString(),
              "-xf",
              x.resolve("rootfs-diff.tar").toString()));
      for (JsonNode d : json.readTree(x.resolve("deleted.files").toFile())) {
        Exec.ok(BOUND, List.of("rm", "-rf", nb.resolve("rootfs").resolve(d.asText()).toString()));
      }
      Files.copy(x.resolve("spec.dump"), nb.resolve("config.json"));
      Path runcRoot = Files.createDirectories(work.resolve("runc-root-2"));
      String id2 = "archived-" + ctr.id().substring(0, 12);
      Path stdout = work.resolve("from-archive.out");
      Path rc = work.resolve("from-archive.rc");
      String restore =
          "PATH="
              + Crit.JUDGE.resolve("bin")
              + ":$PATH runc --root "
              + runcRoot
              + " restore -d --bundle "
              + nb
              + " --image-path "
              + x.resolve("checkpoint")
              + " --work-path "
              + work.resolve("restore-work")
              + " "
              + id2;
      Files.writeString(
          work.resolve("restore.sh"),
          "sleep 100000 | { "
              + restore
              + "; echo $? > "
              + rc
              + "; } 2>&1 | cat > "
              + stdout
              + "\n");
      String group =
          Exec.ok(
                  BOUND,
                  List.of(
                      "sh",
                      "-c",
                      "setsid sh "
                          + work.resolve("restore.sh")
                          + " >/dev/null 2>&1 </dev/null & echo $!; while [ ! -s "
                          + rc
                          + " ]; do sleep 0.1; done"))
              .strip();
      try {
        assertEquals("0", Files.readString(rc).strip(), "runc restore: " + read(stdout));
        List<String> counted = List.of();
        for (int i = 0; i < 400 && counted.size() < 3; i++) {
          Thread.sleep(50);
          String sofar = read(stdout);
          // whole lines only: the last one may still be being written
          counted =
              sofar
                  .substring(0, sofar.lastIndexOf('\n') + 1)
                  .lines()
                  .filter(l -> l.matches("[0-9]+"))
                  .toList();
        }
        assertTrue(counted.size() >= 3, "it counts again: " + read(stdout));
        int first = Integer.parseInt(counted.get(0));
        assertTrue(first > 1, "it went on counting, not from 1: " + counted);
        for (int i = 1; i < counted.size(); i++) {
          assertEquals(Integer.toString(first + i), counted.get(i), "line " + i + ": " + counted);
        }
        List<String> exec =
            List.of("runc", "--root", runcRoot.toString(), "exec", id2, "/bin/busybox");
        List<String> cat = new java.util.ArrayList<>(exec);
        cat.addAll(List.of("cat", "/tmp/" + token));
        assertEquals(token, Exec.ok(BOUND, cat).strip(), "the file the diff carried");
        List<String> ls = new java.util.ArrayList<>(exec);
        ls.addAll(List.of("ls", "/bin"));
        assertFalse(Exec.ok(BOUND, ls).lines().anyMatch("cat"::equals), "the file it deleted");
      } finally {
        Exec.run(BOUND, List.of("runc", "--root", runcRoot.toString(), "delete", "-f", id2));
        Exec.run(BOUND, List.of("kill", "-KILL", "--", "-" + group));
      }
    }
  }

  /** checkpointctl's (and Podman's) size format: B below 1 KiB, else one decimal and KiB/MiB... */
  static String bytes(long b) {
    if (b < 1024) {
      return b + " B";
    }
    long div = 1024;
    int exp = 0;
    for (long n = b / 1024; n >= 1024; n /= 1024) {
      div *= 1024;
      exp++;
    }
    return String.format(Locale.ROOT, "%.1f %ciB", (double) b / div, "KMGTPE".charAt(exp));
  }

  private static void awaitLine(Path log, String line) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
    while (!Files.exists(log) || !Files.readString(log).lines().anyMatch(line::equals)) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError(log + " never printed " + line + ": " + read(log));
      }
      Thread.sleep(50);
    }
  }
}
