package dev.stasis.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.images.ImageSink;
import dev.stasis.storage.CheckpointStore;
import dev.stasis.storage.StoreOptions;
import dev.stasis.testing.S3Server;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The packaged agent's ls / fetch / rm / dump --to against a real S3 server. */
public class StorageCliIT {
  static S3Server s3;
  @TempDir Path tmp;

  @BeforeAll
  static void start() throws IOException {
    s3 = S3Server.start().bucket("ckpt");
  }

  @AfterAll
  static void stop() {
    s3.close();
  }

  public record Run(int code, String out, String err) {}

  public static Run stasis(Map<String, String> env, String... args) throws Exception {
    return stasisWithJvm(List.of(), env, args);
  }

  static Run stasisWithJvm(List<String> jvm, Map<String, String> env, String... args)
      throws Exception {
    ProcessBuilder pb = command(jvm, env, args);
    Path out = Files.createTempFile("stasis-out", ".txt");
    Path err = Files.createTempFile("stasis-err", ".txt");
    Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "stasis " + String.join(" ", args) + " hung");
    Run r = new Run(p.exitValue(), Files.readString(out), Files.readString(err));
    Files.delete(out);
    Files.delete(err);
    return r;
  }

  /** The packaged agent's command line, the caller's AWS credentials not inherited. */
  public static ProcessBuilder command(List<String> jvm, Map<String, String> env, String... args) {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(jvm);
    cmd.add("-jar");
    cmd.add(System.getProperty("stasis.jar", "target/stasis-node-agent.jar"));
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().remove("AWS_ACCESS_KEY_ID");
    pb.environment().remove("AWS_SECRET_ACCESS_KEY");
    pb.environment().putAll(env);
    return pb;
  }

  private static byte[] writeCheckpoint(String uri, boolean commit) throws IOException {
    byte[] pages = new byte[6 << 20];
    new java.util.Random(7).nextBytes(pages);
    StoreOptions o =
        StoreOptions.defaults().withParts(StoreOptions.MIN_S3_PART, 2).withS3(s3.config());
    try (CheckpointStore store = CheckpointStore.open(uri, o)) {
      ImageSink sink = store.newCheckpoint();
      try (WritableByteChannel c = sink.create("pages-1.img")) {
        c.write(ByteBuffer.wrap(pages));
      }
      try (WritableByteChannel c = sink.create("inventory.img")) {
        c.write(ByteBuffer.wrap("inv".getBytes(StandardCharsets.US_ASCII)));
      }
      if (commit) {
        sink.commit();
      }
    }
    return pages;
  }

  @Test
  void everyCommandHasHelp() throws Exception {
    for (String c : List.of("dump", "ls", "fetch", "rm", "push", "demo", "agent")) {
      Run h = stasis(Map.of(), c, "--help");
      assertEquals(0, h.code(), c + " --help: " + h.err());
      assertTrue(h.out().startsWith("Usage: stasis " + c + " "), h.out());
    }
    Run top = stasis(Map.of(), "--help");
    assertEquals(0, top.code(), top.err());
    for (String c : List.of("dump", "ls", "fetch", "rm", "push", "demo", "agent")) {
      assertTrue(
          top.out().contains("\n  " + c + " "), "top-level help lists " + c + ":\n" + top.out());
    }
    assertTrue(!top.out().contains("cds-train"), "the training command stays hidden");
  }

  @Test
  void virtualHostStyleAddressesTheBucketAsAHostName() throws Exception {
    try (S3Server vh = S3Server.startVirtualHost().bucket("vhb")) {
      // Only the bucket's host name resolves: a path-style request (to the bare domain) would fail
      // with an unknown host, so success proves the bucket.domain addressing.
      Path hosts = tmp.resolve("hosts");
      Files.writeString(hosts, "127.0.0.1 vhb." + S3Server.VIRTUAL_HOST + "\n");
      List<String> jvm = List.of("-Djdk.net.hosts.file=" + hosts);
      String endpoint = "http://" + S3Server.VIRTUAL_HOST + ":" + vh.port();
      Map<String, String> env =
          Map.of(
              "AWS_ACCESS_KEY_ID", S3Server.ACCESS_KEY,
              "AWS_SECRET_ACCESS_KEY", S3Server.SECRET_KEY);
      Path images = Files.createDirectories(tmp.resolve("vh-images"));
      byte[] pages = new byte[3 << 20];
      new java.util.Random(3).nextBytes(pages);
      Files.write(images.resolve("pages-1.img"), pages);
      Files.writeString(images.resolve("inventory.img"), "inv");

      String[] s3 = {"--s3-endpoint", endpoint, "--s3-virtual-host"};
      Run push =
          stasisWithJvm(
              jvm,
              env,
              concat("push", "--images-dir", images.toString(), "--to", "s3://vhb/x", s3));
      assertEquals(0, push.code(), push.err());
      Run ls = stasisWithJvm(jvm, env, concat("ls", "--from", "s3://vhb", s3));
      assertEquals(0, ls.code(), ls.err());
      assertTrue(ls.out().startsWith("x\tcomplete\t"), ls.out());
      Path back = tmp.resolve("vh-back");
      Run fetch =
          stasisWithJvm(
              jvm,
              env,
              concat("fetch", "--from", "s3://vhb/x", "--images-dir", back.toString(), s3));
      assertEquals(0, fetch.code(), fetch.err());
      assertArrayEquals(pages, Files.readAllBytes(back.resolve("pages-1.img")));

      // The same command in path style goes to the bare domain, which does not resolve.
      Run path = stasisWithJvm(jvm, env, "ls", "--from", "s3://vhb", "--s3-endpoint", endpoint);
      assertEquals(1, path.code(), path.out());
      assertTrue(path.err().contains(S3Server.VIRTUAL_HOST), path.err());
    }
  }

  private static String[] concat(String a, String b, String c, String[] rest) {
    return concat(new String[] {a, b, c}, rest);
  }

  private static String[] concat(String a, String b, String c, String d, String e, String[] rest) {
    return concat(new String[] {a, b, c, d, e}, rest);
  }

  private static String[] concat(String[] a, String[] b) {
    String[] r = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }

  @Test
  void lsFetchRm() throws Exception {
    byte[] pages = writeCheckpoint("s3://ckpt/cli/a", true);
    writeCheckpoint("s3://ckpt/cli/b", false);

    Run ls = stasis(s3.env(), "ls", "--from", "s3://ckpt/cli");
    assertEquals(0, ls.code(), ls.err());
    String[] lines = ls.out().strip().split("\n");
    assertEquals(2, lines.length, ls.out());
    assertTrue(
        lines[0].matches("a\tcomplete\t6\\.0 MiB\t\\d+s\t[0-9a-f]{32}\ts3://ckpt/cli/a"), lines[0]);
    assertTrue(lines[1].startsWith("b\tincomplete\t"), lines[1]);

    Path dir = tmp.resolve("images");
    Run f = stasis(s3.env(), "fetch", "--from", "s3://ckpt/cli/a", "--images-dir", dir.toString());
    assertEquals(0, f.code(), f.err());
    assertArrayEquals(pages, Files.readAllBytes(dir.resolve("pages-1.img")));
    assertEquals("inv", Files.readString(dir.resolve("inventory.img")));

    Run again =
        stasis(s3.env(), "fetch", "--from", "s3://ckpt/cli/a", "--images-dir", dir.toString());
    assertEquals(1, again.code());
    assertEquals(
        "stasis fetch: images directory " + dir + " already contains inventory.img\n", again.err());

    Run inc =
        stasis(
            s3.env(),
            "fetch",
            "--from",
            "s3://ckpt/cli/b",
            "--images-dir",
            tmp.resolve("x").toString());
    assertEquals(1, inc.code());
    assertTrue(inc.err().contains("incomplete (no manifest.json)"), inc.err());

    Run rm = stasis(s3.env(), "rm", "--from", "s3://ckpt/cli/b");
    assertEquals(0, rm.code(), rm.err());
    Run rm2 = stasis(s3.env(), "rm", "--from", "s3://ckpt/cli/a");
    assertEquals(0, rm2.code(), rm2.err());
    assertEquals("", stasis(s3.env(), "ls", "--from", "s3://ckpt/cli").out());
    try (CheckpointStore store =
        CheckpointStore.open("s3://ckpt/cli", StoreOptions.defaults().withS3(s3.config()))) {
      assertEquals(List.of(), store.objectKeys());
      assertEquals(List.of(), store.pendingUploads());
    }
  }

  @Test
  void errorsAreOneLineAndDumpToABadDestinationLeavesTheProcessAlone() throws Exception {
    Run nb = stasis(s3.env(), "ls", "--from", "s3://nosuchbucket/x");
    assertEquals(1, nb.code());
    assertEquals(
        "stasis ls: bucket 'nosuchbucket' does not exist at " + s3.endpoint() + "\n", nb.err());

    Run nocred =
        stasis(
            Map.of("STASIS_S3_ENDPOINT", s3.endpoint(), "HOME", tmp.toString()),
            "ls",
            "--from",
            "s3://ckpt/");
    assertEquals(1, nocred.code());
    assertTrue(nocred.err().startsWith("stasis ls: no S3 credentials"), nocred.err());

    Process sleeper = new ProcessBuilder("sleep", "60").start();
    try {
      Run d =
          stasis(
              s3.env(),
              "dump",
              "--pid",
              Long.toString(sleeper.pid()),
              "--to",
              "s3://nosuchbucket/cp");
      assertEquals(1, d.code());
      assertEquals(
          "stasis dump: bucket 'nosuchbucket' does not exist at " + s3.endpoint() + "\n", d.err());
      assertTrue(sleeper.isAlive());

      String pid = Long.toString(sleeper.pid());
      Run neither = stasis(s3.env(), "dump", "--pid", pid);
      assertEquals(1, neither.code());
      assertEquals(
          "stasis dump: give exactly one of --images-dir DIR and --to URI\n", neither.err());
      Run plainDir =
          stasis(
              s3.env(), "dump", "--pid", pid, "--images-dir", tmp.toString(), "--compress", "zstd");
      assertEquals(1, plainDir.code());
      assertTrue(
          plainDir
              .err()
              .startsWith("stasis dump: --compress and --encryption-key-file need --to URI"),
          plainDir.err());
      assertTrue(sleeper.isAlive());
    } finally {
      sleeper.destroy();
    }
  }
}
