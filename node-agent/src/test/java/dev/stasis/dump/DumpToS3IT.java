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
}
