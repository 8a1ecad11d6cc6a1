package dev.stasis.testing;

import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.stasis.linux.LinuxException;
import dev.stasis.linux.Userfaultfd;
import dev.stasis.linux.proc.Maps;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What live copy's write tracking may leave in a process, and whether this kernel has it: shared by
 * the live-copy tests of the CLI and of the agent's pod checkpoints.
 */
public final class LiveTracking {
  /** pagemap bit 57: the page is write-protected by a userfaultfd. */
  private static final long PM_UFFD_WP = 1L << 57;

  private LiveTracking() {}

  /** VMAs of {@code pid} registered with a userfaultfd for write-protection ("uw" in smaps). */
  public static long registeredVmas(int pid) throws IOException {
    return Maps.read(pid).stream().filter(v -> v.hasFlag("uw")).count();
  }

  /** No userfaultfd descriptor, no VMA registered with one, no page write-protected by one. */
  public static void assertNoUserfaultfd(int pid) throws IOException {
    try (DirectoryStream<Path> fds = Files.newDirectoryStream(Path.of("/proc/" + pid + "/fd"))) {
      for (Path fd : fds) {
        String target = Files.readSymbolicLink(fd).toString();
        assertFalse(target.contains("userfaultfd"), "fd " + fd.getFileName() + " -> " + target);
      }
    }
    try (FileChannel pm = FileChannel.open(Path.of("/proc/" + pid + "/pagemap"))) {
      for (Maps.Vma v : Maps.read(pid)) {
        assertFalse(v.hasFlag("uw"), "VMA " + v.mapFilesName() + " still registered (uw)");
        if (v.path().equals("[vsyscall]")) {
          continue;
        }
        long pages = v.length() / 4096;
        ByteBuffer e = ByteBuffer.allocate((int) (pages * 8)).order(ByteOrder.LITTLE_ENDIAN);
        while (e.hasRemaining() && pm.read(e, v.start() / 4096 * 8 + e.position()) > 0) {
          // whole VMA
        }
        for (int i = 0; i < e.position() / 8; i++) {
          if ((e.getLong(i * 8) & PM_UFFD_WP) != 0) {
            throw new AssertionError(
                "page 0x" + Long.toHexString(v.start() + i * 4096L) + " is still write-protected");
          }
        }
      }
    }
  }

  /**
   * Probes this kernel the way the dump needs it: a userfaultfd of our own that accepts
   * asynchronous write-protection of unpopulated pages.
   */
  public static boolean kernelHasAsyncWp() {
    try (Userfaultfd u = Userfaultfd.ofAgent()) {
      long want = Userfaultfd.FEATURE_WP_ASYNC | Userfaultfd.FEATURE_WP_UNPOPULATED;
      return (u.api(want) & want) == want;
    } catch (LinuxException e) {
      return false;
    }
  }
}
