package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Kinds the engine refuses (io_uring, fanotify, file leases): the dump fails before anything is
 * frozen with one line naming the fd and its kind, writes no images, and the workload holding it
 * goes on untraced, unstopped and with its descriptor as it was (it checks that itself).
 */
class RefusedFilesIT {

  @ParameterizedTest
  @ValueSource(strings = {"io_uring", "fanotify"})
  void refusedBeforeTheFreezeNamingTheFd(String kind) throws Exception {
    assertRefused(
        kind,
        "OK fd 3 is anon_inode:[" + kind + "]",
        pid -> "fd 3 is [" + kind + "]: not supported");
  }

  /** A file lease has no restore here (flock, POSIX and OFD locks do: {@link FileLocksIT}). */
  @org.junit.jupiter.api.Test
  void aLeaseIsRefusedBeforeTheFreezeNamingTheFd() throws Exception {
    assertRefused("lease", "OK fd 3 is a leased file", pid -> "fd 3 holds a lease: not supported");
  }

  /** A pty slave whose master is outside the tree: a shell's terminal (CRIU's --shell-job). */
  @org.junit.jupiter.api.Test
  void aTerminalWhoseMasterIsOutsideTheTreeIsRefused() throws Exception {
    assertRefused(
        "pts",
        "OK fd 3 is a pty slave",
        pid -> "fd 3 of PID " + pid + " is the terminal /dev/pts/",
        pid -> ", whose master is outside the dumped tree: not supported");
  }

  /**
   * A pty whose master the tree holds, but which controls a session led from outside the tree: the
   * restore could not give the terminal back to its session (sessions inside the tree are dumped:
   * {@link PtyIT}).
   */
  @org.junit.jupiter.api.Test
  void aTerminalControllingASessionOutsideTheTreeIsRefused() throws Exception {
    assertRefused(
        "ctty",
        "OK fd 3 is a pty master controlling another session",
        pid -> "fd 3 of PID " + pid + " (/dev/pts/",
        pid -> "whose leader is outside the dumped tree: not supported");
  }

  @SafeVarargs
  private static void assertRefused(
      String kind, String untouched, java.util.function.IntFunction<String>... errorParts)
      throws Exception {
    try (Workloads.Running w = Workloads.start("refused", kind)) {
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString());
      assertNotEquals(0, r.exit(), "dump of a process holding " + kind + " must fail");
      DumpFaultsIT.assertOneLine(r.stderr());
      for (java.util.function.IntFunction<String> part : errorParts) {
        assertTrue(
            r.stderr().contains(part.apply(w.pid)), "names fd 3 and its kind: " + r.stderr());
      }
      assertTrue(!Files.exists(images.resolve("pstree.img")), "no images written");
      String status = Files.readString(Path.of("/proc/" + w.pid + "/status"));
      assertTrue(status.contains("TracerPid:\t0\n"), "untraced: " + status);
      assertTrue(!status.contains("State:\tt"), "not stopped: " + status);
      String after = w.check();
      assertEquals(untouched, after, "workload after the refusal");
    }
  }
}
