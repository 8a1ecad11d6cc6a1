package dev.stasis.images;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A write-through pages file on a file system without O_DIRECT (ramfs refuses it at open) falls
 * back to an ordinary buffered file, and the set is complete all the same.
 */
class DirectoryImageSinkIT {

  private static void run(String... cmd) throws Exception {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new AssertionError(String.join(" ", cmd) + " failed: " + out);
    }
  }

  @Test
  void withoutODirectThePagesFileIsBuffered() throws Exception {
    Path mnt = Files.createTempDirectory(Files.createDirectories(Path.of("target")), "ramfs");
    run("mount", "-t", "ramfs", "ramfs", mnt.toString());
    try {
      byte[] expected = new byte[3 * 4096];
      new java.util.Random(5).nextBytes(expected);
      try (DirectoryImageSink sink = DirectoryImageSink.open(mnt.resolve("images"))) {
        WritableByteChannel ch =
            sink.createPages("pages-1.img", true, DirectoryImageSink.EARLY_SYNC_MAX + 1);
        assertFalse(ch instanceof DirectChannel, "ramfs has no O_DIRECT");
        ByteBuffer b = ByteBuffer.wrap(expected);
        while (b.hasRemaining()) {
          ch.write(b);
        }
        ch.close();
        sink.commit();
      }
      assertArrayEquals(expected, Files.readAllBytes(mnt.resolve("images/pages-1.img")));
      try (var s = Files.list(mnt.resolve("images"))) {
        assertEquals(1, s.count());
      }
    } finally {
      run("umount", mnt.toString());
      Files.delete(mnt);
    }
  }
}
