package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.storage.CheckpointStore;
import dev.stasis.storage.StoreOptions;
import dev.stasis.testing.Exec;
import dev.stasis.testing.RuncContainer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A container's writable layer through the agent's path ({@link PodDump} with {@link
 * ContainerRootfs}, the real engine, a real store): a runc container on an overlay root, as
 * containerd's snapshotter makes it, writes a file, changes one of its image and deletes others
 * (one file, and a directory it then makes again); the stored checkpoint carries exactly those
 * changes, through the store's encoding and verification, plus spec.dump and config.dump.
 */
class ContainerRootfsIT {
  static final ObjectMapper JSON = new ObjectMapper();
  static final Duration BOUND = Duration.ofSeconds(60);

  @TempDir Path work;

  /** The lower layer's extra files (the "image"). */
  static void image(Path lower) throws IOException {
    Files.writeString(lower.resolve("etc/motd"), "from the image\n");
    Files.writeString(lower.resolve("etc/gone"), "deleted by the container\n");
    Files.createDirectories(lower.resolve("opt/old"));
    Files.writeString(lower.resolve("opt/old/a"), "a\n");
    Files.writeString(lower.resolve("opt/old/b"), "b\n");
  }

  /**
   * Changes the root file system, writes into its volume, then counts with its state in memory;
   * "ready" once every change is made.
   */
  static final String SCRIPT =
      "B=/bin/busybox; echo written > /tmp/new.txt; echo changed >> /etc/motd; $B rm /etc/gone;"
          + " $B rm -r /opt/old; $B mkdir /opt/old; echo fresh > /opt/old/n;"
          + " $B mkdir -p /var/lib/app; echo state > /var/lib/app/db; echo vol > /data/v;"
          + " echo ready; i=0; while :; do read -t 0.1 x; i=$((i+1)); echo $i; done";

  static RuncContainer start(Path work) throws Exception {
    Path volume = Files.createDirectories(work.resolve("volume"));
    RuncContainer c = RuncContainer.startOnOverlay(work, SCRIPT, volume, ContainerRootfsIT::image);
    long deadline = System.nanoTime() + BOUND.toNanos();
    // every change made, and the counter printed a few whole lines (the state to come back to)
    while (!Files.readString(c.log()).contains("ready")
        || Files.readString(c.log()).lines().filter(l -> l.matches("[0-9]+")).count() < 4) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("container did not get ready: " + Files.readString(c.log()));
      }
      Thread.sleep(20);
    }
    return c;
  }

  /** The agent's member for {@code c}: its sink into {@code store}, its root capture. */
  static PodDump.Member member(RuncContainer c, CheckpointStore store, List<String> progress)
      throws Exception {
    ContainerRootfs rootfs =
        new ContainerRootfs(
            Path.of("/proc/1/root"),
            List.of(
                "/run/containerd/io.containerd.runtime.v2.task/k8s.io/{id}/config.json",
                c.bundle().resolve("config.json").toString()),
            "docker.io/library/busybox:1.36");
    return new PodDump.Member(
        "app",
        ContainerProcesses.host().resolve(c.containerId()),
        new TrackingSink(store.newCheckpoint(), () -> false, () -> {}),
        progress::add,
        rootfs);
  }

  static StoreOptions options(Path work) {
    return StoreOptions.defaults()
        .withCompression("zstd", 3)
        .withSpool(work.resolve("spool"), 64L << 20);
  }

  /** The checks on a fetched image set: exactly the container's changes, and the layout files. */
  static void assertCarriesTheChanges(Path images, RuncContainer c) throws Exception {
    List<String> deleted = new java.util.ArrayList<>();
    JSON.readTree(images.resolve("deleted.files").toFile()).forEach(n -> deleted.add(n.asText()));
    assertEquals(
        List.of("etc/gone", "opt/old/a", "opt/old/b"),
        deleted.stream().sorted().toList(),
        "the deleted file and what the re-made directory hides");

    Path x = Files.createDirectories(images.resolveSibling(images.getFileName() + "-diff"));
    Exec.ok(BOUND, List.of("tar", "-C", x.toString(), "-xf", images + "/rootfs-diff.tar"));
    Set<String> files = new TreeSet<>();
    Set<String> dirs = new TreeSet<>();
    try (Stream<Path> s = Files.walk(x)) {
      for (Path p : s.filter(p -> !p.equals(x)).toList()) {
        (Files.isDirectory(p) ? dirs : files).add(x.relativize(p).toString());
      }
    }
    assertEquals(
        Set.of("etc/motd", "opt/old/n", "tmp/new.txt", "var/lib/app/db"),
        files,
        "the written, changed and new files; nothing of the volume or other mounts");
    for (String d : dirs) {
      assertTrue(files.stream().anyMatch(f -> f.startsWith(d + "/")), "only parents: " + d);
    }
    assertEquals("from the image\nchanged\n", Files.readString(x.resolve("etc/motd")));
    assertEquals("written\n", Files.readString(x.resolve("tmp/new.txt")));
    assertEquals("fresh\n", Files.readString(x.resolve("opt/old/n")));
    assertEquals("state\n", Files.readString(x.resolve("var/lib/app/db")));
    assertEquals(
        Files.readString(c.bundle().resolve("config.json")),
        Files.readString(images.resolve("spec.dump")),
        "spec.dump is the bundle's config.json");
    JsonNode config = JSON.readTree(images.resolve("config.dump").toFile());
    assertEquals(c.id(), config.get("id").asText());
    assertEquals("app", config.get("name").asText());
    assertEquals("docker.io/library/busybox:1.36", config.get("rootfsImageName").asText());
  }

  @Test
  void theStoredCheckpointCarriesExactlyTheWritableLayersChanges() throws Exception {
    String uri = "file://" + Files.createDirectories(work.resolve("store")) + "/app";
    try (RuncContainer c = start(work);
        CheckpointStore store = CheckpointStore.open(uri, options(work))) {
      List<String> said = new CopyOnWriteArrayList<>();
      PodDump.Member m = member(c, store, said);
      try {
        PodDump.run(List.of(m), true, ProcessDumper.ENGINE, Duration.ofSeconds(5), () -> false);
      } finally {
        m.sink().close();
      }
      assertTrue(
          said.stream()
              .anyMatch(s -> s.startsWith("root file system: ") && s.endsWith(" 3 deleted")),
          said.toString());
      assertFalse(said.stream().anyMatch(s -> s.startsWith("no ")), "no notice: " + said);
      Path images = work.resolve("fetched");
      CheckpointStore.Fetched f = store.fetch(images); // verifies every object's digest
      assertTrue(f.files().contains("rootfs-diff.tar"), f.files().toString());
      assertTrue(
          store.objectKeys().stream().anyMatch(k -> k.endsWith("rootfs-diff.tar.zst")),
          "encoded as every image: " + store.objectKeys());
      String fact = f.manifest().source().get("rootfs.diff");
      assertTrue(fact != null && fact.contains("3 deleted"), "recorded: " + fact);
      assertTrue(f.manifest().source().get("rootfs.spec").endsWith("config.json"));
      assertCarriesTheChanges(images, c);
      int lines = c.lines();
      PodDumpIT.await(() -> c.lines() > lines + 2, "keeps running (leave-running)");
      try (Stream<Path> s = Files.list(work.resolve("spool"))) {
        assertEquals(List.of(), s.toList(), "the spool is emptied by the commit");
      }
    }
  }

  /** A root that is not overlayfs (runc's plain directory): no diff, one notice, not a failure. */
  @Test
  void aRootThatIsNotOverlayGivesNoDiffAndOneNotice() throws Exception {
    String uri = "file://" + Files.createDirectories(work.resolve("store")) + "/plain";
    try (RuncContainer c = RuncContainer.counter(work);
        CheckpointStore store = CheckpointStore.open(uri, options(work))) {
      List<String> said = new CopyOnWriteArrayList<>();
      PodDump.Member m = member(c, store, said);
      try {
        PodDump.run(List.of(m), true, ProcessDumper.ENGINE, Duration.ofSeconds(5), () -> false);
      } finally {
        m.sink().close();
      }
      List<String> notices = said.stream().filter(s -> s.startsWith("no rootfs-diff.tar")).toList();
      assertEquals(1, notices.size(), said.toString());
      assertTrue(notices.get(0).contains("not overlayfs"), notices.get(0));
      Path images = work.resolve("fetched");
      CheckpointStore.Fetched f = store.fetch(images);
      assertFalse(f.files().contains("rootfs-diff.tar"), f.files().toString());
      assertFalse(f.files().contains("deleted.files"), f.files().toString());
      assertTrue(f.files().containsAll(List.of("spec.dump", "config.dump", "pstree.img")));
    }
  }
}
