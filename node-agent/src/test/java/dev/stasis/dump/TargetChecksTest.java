package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.stasis.linux.proc.Maps;
import org.junit.jupiter.api.Test;

/** Which mappings the pre-freeze ghost limit looks at (plain /proc/PID/maps lines, no I/O). */
class TargetChecksTest {
  private static boolean ghost(String line) {
    return TargetChecks.mapsAGhost(Maps.parse(line + "\n").get(0));
  }

  /**
   * Only a deleted file of a real file system is a ghost: shared anonymous memory prints as
   * "/dev/zero (deleted)" (PostgreSQL's buffers: 142 MiB in RealProgramsIT), SysV segments and
   * memfds as deleted files of the internal shmem mount, none of which the ghost limit concerns.
   */
  @Test
  void onlyDeletedFilesOfARealFileSystemAreGhosts() {
    assertEquals(
        true, ghost("7f0000000000-7f0000001000 rw-s 00000000 08:01 99 /tmp/log (deleted)"));
    assertEquals(false, ghost("7f0000000000-7f0000001000 rw-s 00000000 08:01 99 /tmp/log"));
    assertEquals(
        false, ghost("7f7eac751000-7f7eb5751000 rw-s 00000000 00:01 1234 /dev/zero (deleted)"));
    assertEquals(
        false, ghost("7f0000000000-7f0000001000 rw-s 00000000 00:01 5 /SYSV00000000 (deleted)"));
    assertEquals(
        false, ghost("7f0000000000-7f0000001000 rw-s 00000000 00:01 7 /memfd:x (deleted)"));
    assertEquals(
        false, ghost("7f0000000000-7f0000200000 rw-s 00000000 00:10 8 /anon_hugepage (deleted)"));
  }
}
