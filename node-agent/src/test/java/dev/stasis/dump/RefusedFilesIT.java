package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Kinds the engine refuses (io_uring, fanotify, file leases, deleted files still linked elsewhere):
 * the dump fails (before anything is frozen, but for mappings) with one line naming the fd and its
 * kind, writes no images, and the workload holding it goes on untraced, unstopped and with its
 * descriptor as it was (it checks that itself).
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

  /**
   * A file unlinked under the name it was opened by but still linked under another: CRIU 4.2.1
   * refuses it as well unless given --link-remap (a hard link made at dump time); refused here
   * before the freeze, naming the fd, the path and the links left.
   */
  @org.junit.jupiter.api.Test
  void aDeletedFileStillLinkedElsewhereIsRefused() throws Exception {
    assertRefusedIn(
        "linked",
        state -> "OK fd 3 is " + state + "/linked (deleted)",
        (pid, state) ->
            "fd 3 is a deleted file still linked elsewhere ("
                + state
                + "/linked (deleted), 1 link left): not supported (CRIU's --link-remap case)");
  }

  /**
   * The same file behind a shared mapping only (no descriptor): refused while the dump reads the
   * mappings (the tree is frozen then), naming the mapping; the process is released unharmed.
   */
  @org.junit.jupiter.api.Test
  void aMappingOfADeletedFileStillLinkedElsewhereIsRefused() throws Exception {
    assertRefusedIn(
        "linkedmap",
        state -> "OK a mapping of a deleted file still linked",
        (pid, state) ->
            " is a deleted file still linked elsewhere ("
                + state
                + "/linkedmap (deleted), 1 link left): not supported (CRIU's --link-remap case)");
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

  /**
   * A ghost (deleted-but-open file) larger than the ghost limit: its whole content would go into
   * the images, so it is refused before the freeze, naming the fd, the file, its size, the limit
   * and the option. The workload's file is 100 MiB of which one byte is data (a hole costs
   * nothing), over the 64 MiB default.
   */
  @org.junit.jupiter.api.Test
  void aGhostOverTheDefaultLimitIsRefusedNamingItsSizeAndTheOption() throws Exception {
    assertRefusedIn(
        "bigghost",
        state -> "OK fd 3 is " + state + "/bigghost (deleted)",
        (pid, state) ->
            "fd 3 of PID "
                + pid
                + " is a deleted file of 100.0 MiB ("
                + state
                + "/bigghost (deleted)), over the ghost file limit of 64.0 MiB: its whole content"
                + " would go into the images; raise --ghost-limit to dump it");
  }

  /** The same file behind a shared mapping only: refused before the freeze, naming the mapping. */
  @org.junit.jupiter.api.Test
  void aMappedGhostOverTheLimitIsRefusedNamingTheMapping() throws Exception {
    assertRefusedIn(
        "bigghostmap",
        state -> "OK a mapping of a deleted file of 100 MiB",
        (pid, state) -> "the mapping at 0x",
        (pid, state) ->
            " of PID "
                + pid
                + " is a deleted file of 100.0 MiB ("
                + state
                + "/bigghostmap (deleted)), over the ghost file limit of 64.0 MiB");
  }

  /** {@code --ghost-limit} lowers the limit (refused the same way) and raises it (dumped). */
  @org.junit.jupiter.api.Test
  void theGhostLimitOptionLowersAndRaisesTheLimit() throws Exception {
    assertRefusedIn(
        "bigghost",
        new String[] {"--ghost-limit", "1M"},
        state -> "OK fd 3 is " + state + "/bigghost (deleted)",
        (pid, state) -> "is a deleted file of 100.0 MiB",
        (pid, state) -> "over the ghost file limit of 1.0 MiB");
    try (Workloads.Running w = Workloads.start("refused", "bigghost")) {
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump",
              "--pid",
              Integer.toString(w.pid),
              "--images-dir",
              images.toString(),
              "--leave-running",
              "--ghost-limit",
              "128MiB");
      assertEquals(0, r.exit(), "dumped under a raised limit: " + r.stderr());
      assertTrue(
          Files.list(images).anyMatch(f -> f.getFileName().toString().startsWith("ghost-file-")),
          "the ghost is in the images");
      assertEquals("OK fd 3 is " + w.state + "/bigghost (deleted)", w.check());
    }
    Workloads.Cli bad =
        Workloads.stasis("dump", "--pid", "1", "-D", "/tmp/x", "--ghost-limit", "lots");
    assertNotEquals(0, bad.exit());
    DumpFaultsIT.assertOneLine(bad.stderr());
    assertTrue(
        bad.stderr().contains("--ghost-limit 'lots' is not a size"), "bad size: " + bad.stderr());
  }

  /**
   * A hugetlb memfd (MFD_HUGETLB) held as a plain descriptor: its link reads like a memfd's and it
   * has no link left, but it lives on hugetlbfs, not shmem. Refused by name before the freeze
   * instead of being taken for a ghost file. Sizing it reserves no huge page, so this runs on
   * machines without any (vm.nr_hugepages 0); it needs hugetlbfs in the kernel.
   */
  @org.junit.jupiter.api.Test
  void aHugetlbMemfdIsRefusedBeforeTheFreeze() throws Exception {
    org.junit.jupiter.api.Assumptions.assumeTrue(
        Files.readString(Path.of("/proc/filesystems")).contains("hugetlbfs"),
        "this kernel has no hugetlbfs");
    assertRefused(
        "hugememfd",
        "OK fd 3 is /memfd:hugememfd (deleted)",
        pid -> "fd 3 is a hugetlb memfd (/memfd:hugememfd (deleted)): not supported");
  }

  @SafeVarargs
  private static void assertRefused(
      String kind, String untouched, java.util.function.IntFunction<String>... errorParts)
      throws Exception {
    assertRefusedIn(
        kind,
        state -> untouched,
        java.util.Arrays.stream(errorParts)
            .<java.util.function.BiFunction<Integer, Path, String>>map(
                part -> (pid, state) -> part.apply(pid))
            .toArray(java.util.function.BiFunction[]::new));
  }

  /**
   * The refusal checks, with the expected verdict and error parts made from the workload's PID and
   * state directory: the dump fails with one line holding every part, writes no images, and leaves
   * the workload untraced, running and as it was.
   */
  @SafeVarargs
  private static void assertRefusedIn(
      String kind,
      java.util.function.Function<Path, String> untouched,
      java.util.function.BiFunction<Integer, Path, String>... errorParts)
      throws Exception {
    assertRefusedIn(kind, new String[0], untouched, errorParts);
  }

  /** The same, with {@code options} added to the dump's command line. */
  @SafeVarargs
  private static void assertRefusedIn(
      String kind,
      String[] options,
      java.util.function.Function<Path, String> untouched,
      java.util.function.BiFunction<Integer, Path, String>... errorParts)
      throws Exception {
    try (Workloads.Running w = Workloads.start("refused", kind)) {
      Path images = w.state.resolve("images");
      List<String> args =
          new java.util.ArrayList<>(
              List.of("dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString()));
      args.addAll(List.of(options));
      Workloads.Cli r = Workloads.stasis(args.toArray(String[]::new));
      assertNotEquals(0, r.exit(), "dump of a process holding " + kind + " must fail");
      DumpFaultsIT.assertOneLine(r.stderr());
      for (java.util.function.BiFunction<Integer, Path, String> part : errorParts) {
        assertTrue(
            r.stderr().contains(part.apply(w.pid, w.state)),
            "names " + part.apply(w.pid, w.state) + ": " + r.stderr());
      }
      assertTrue(!Files.exists(images.resolve("pstree.img")), "no images written");
      String status = Files.readString(Path.of("/proc/" + w.pid + "/status"));
      assertTrue(status.contains("TracerPid:\t0\n"), "untraced: " + status);
      assertTrue(!status.contains("State:\tt"), "not stopped: " + status);
      String after = w.check();
      assertEquals(untouched.apply(w.state), after, "workload after the refusal");
    }
  }
}
