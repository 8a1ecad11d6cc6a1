package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.testing.CriuJudge;
import dev.stasis.testing.S3Server;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

/**
 * Issue 3 end to end: a real process is dumped by the packaged agent straight into S3 (streamed,
 * zstd-compressed and encrypted on the way), listed, fetched with verification into an images
 * directory, and restored from there by upstream CRIU; the restored workload checks its memory.
 */
class DumpToS3IT {

  @Test
  void dumpToS3FetchAndRestore() throws Exception {
    try (S3Server s3 = S3Server.start().bucket("ckpt");
        Workloads.Running w = Workloads.start("memhog", "64")) {
      assertTrue(w.check().startsWith("OK"), "workload is healthy before the dump");
      Path key = w.state.resolve("key");
      Files.writeString(key, HexFormat.of().formatHex(new byte[32]).replace('0', '7'));
      String uri = "s3://ckpt/nodes/n1/memhog-" + w.pid;

      Workloads.Cli d =
          Workloads.stasis(
              s3.env(),
              "dump",
              "--pid",
              Integer.toString(w.pid),
              "--to",
              uri,
              "--compress",
              "zstd",
              "--encryption-key-file",
              key.toString());
      assertEquals(0, d.exit(), "stasis dump --to failed: " + d.stderr());
      assertTrue(
          d.stdout().contains("dumped PID " + w.pid + " ") && d.stdout().contains(uri), d.stdout());
      w.awaitGone();

      Workloads.Cli ls = Workloads.stasis(s3.env(), "ls", "--from", "s3://ckpt/nodes");
      assertEquals(0, ls.exit(), ls.stderr());
      assertTrue(ls.stdout().startsWith("n1/memhog-" + w.pid + "\tcomplete\t"), ls.stdout());

      JsonNode m =
          new ObjectMapper()
              .readTree(
                  s3.dataDir()
                      .resolve("ckpt/nodes/n1/memhog-" + w.pid + "/manifest.json")
                      .toFile());
      assertEquals(Integer.toString(w.pid), m.get("source").get("source.pid").asText());
      assertEquals("2", m.get("source").get("criu.images_version").asText());
      assertTrue(m.get("timings").has("frozen_ms"), m.get("timings").toString());
      assertEquals("AES-256-GCM", m.get("encryption").get("algorithm").asText());
      assertTrue(m.get("storedSize").asLong() < m.get("totalSize").asLong(), "compressed");
      assertTrue(m.get("totalSize").asLong() >= 64L << 20, "every page stored");

      Path images = w.state.resolve("images");
      Workloads.Cli f =
          Workloads.stasis(
              s3.env(),
              "fetch",
              "--from",
              uri,
              "--images-dir",
              images.toString(),
              "--encryption-key-file",
              key.toString());
      assertEquals(0, f.exit(), "stasis fetch failed: " + f.stderr());

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "memhog after restore from S3: " + after);
    }
  }

  /**
   * A leave-running dump with a spool directory: the pages go to local disk first (the process is
   * released before the upload), the commit ships them; with a spool too small for the pages, the
   * dump streams as usual and says why in the manifest.
   */
  @Test
  void leaveRunningDumpSpoolsWhenThereIsRoomAndStreamsWhenNot() throws Exception {
    try (S3Server s3 = S3Server.start().bucket("ckpt");
        Workloads.Running w = Workloads.start("memhog", "64")) {
      Path spool = Files.createDirectories(w.state.resolve("spool"));
      String uri = "s3://ckpt/spool/" + w.pid;
      JsonNode m = leaveRunningDump(s3, w, uri, spool);
      assertTrue(w.check().startsWith("OK"), "the workload goes on after the dump");
      long pages = 0;
      for (JsonNode o : m.get("objects")) {
        if (o.get("name").asText().startsWith("checkpoint/pages-")) {
          pages += o.get("size").asLong();
        }
      }
      assertTrue(pages >= 64L << 20, "every page stored: " + pages);
      assertEquals(Long.toString(pages), m.get("source").get("dump.spooled_bytes").asText());
      try (var left = Files.list(spool)) {
        assertEquals(0, left.count(), "the spool is emptied once shipped");
      }
      Path fetched = w.state.resolve("fetched");
      Workloads.Cli f =
          Workloads.stasis(s3.env(), "fetch", "--from", uri, "--images-dir", fetched.toString());
      assertEquals(0, f.exit(), "stasis fetch failed: " + f.stderr());

      // A spool with no room for 64 MiB: the dump streams, and the manifest says why.
      Path small = Files.createDirectories(w.state.resolve("small-spool"));
      run("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", small.toString());
      try {
        JsonNode m2 = leaveRunningDump(s3, w, uri + "-streamed", small);
        assertTrue(m2.get("source").get("dump.spooled_bytes") == null, m2.get("source").toString());
        assertTrue(
            m2.get("source").get("dump.spool").asText().startsWith("not used: " + small),
            m2.get("source").toString());
      } finally {
        run("umount", small.toString());
      }
      assertTrue(w.check().startsWith("OK"), "the workload goes on after both dumps");
    }
  }

  /** {@code stasis dump --leave-running --to uri --spool-dir spool}; returns its manifest. */
  private static JsonNode leaveRunningDump(S3Server s3, Workloads.Running w, String uri, Path spool)
      throws Exception {
    Workloads.Cli d =
        Workloads.stasis(
            s3.env(),
            "dump",
            "--pid",
            Integer.toString(w.pid),
            "--to",
            uri,
            "--leave-running",
            "--spool-dir",
            spool.toString());
    assertEquals(0, d.exit(), "stasis dump --spool-dir " + spool + " failed: " + d.stderr());
    String key = uri.substring("s3://".length());
    return new ObjectMapper().readTree(s3.dataDir().resolve(key + "/manifest.json").toFile());
  }

  private static void run(String... cmd) throws Exception {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    if (!p.waitFor(30, java.util.concurrent.TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new AssertionError(String.join(" ", cmd) + " failed: " + out);
    }
  }
}
