package dev.stasis.dump.files;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.stasis.dump.DumpException;
import org.junit.jupiter.api.Test;

/** The fdinfo {@code lock:} lines as the kernel prints them, read into CRIU's lock fields. */
class FileLocksTest {

  @Test
  void eachKindAndRangeIsReadAsTheImageNumbersIt() throws Exception {
    assertEquals(
        new FileLocks.Lock(2, 1, 0, 0, "FLOCK ADVISORY WRITE 8899 fe:00:2146834 0 EOF"),
        FileLocks.parseLine(3, "1: FLOCK  ADVISORY  WRITE 8899 fe:00:2146834 0 EOF"));
    assertEquals(
        new FileLocks.Lock(1, 1, 10, 20, "POSIX ADVISORY WRITE 8899 fe:00:2146842 10 29"),
        FileLocks.parseLine(4, "1: POSIX  ADVISORY  WRITE 8899 fe:00:2146842 10 29"));
    assertEquals(
        new FileLocks.Lock(1, 0, 100, 0, "POSIX ADVISORY READ 8899 fe:00:2146842 100 EOF"),
        FileLocks.parseLine(4, "2: POSIX  ADVISORY  READ 8899 fe:00:2146842 100 EOF"));
    assertEquals(
        new FileLocks.Lock(4, 1, 0, 5, "OFDLCK ADVISORY WRITE -1 fe:00:2146849 0 4"),
        FileLocks.parseLine(5, "1: OFDLCK ADVISORY  WRITE -1 fe:00:2146849 0 4"));
  }

  @Test
  void leasesAndUnreadableLinesAreRefusedNamingTheFd() {
    DumpException lease =
        assertThrows(
            DumpException.class,
            () -> FileLocks.parseLine(7, "1: LEASE  ACTIVE    READ 10280 fe:00:2146507 0 EOF"));
    assertEquals("fd 7 holds a lease: not supported", lease.getMessage());
    DumpException junk =
        assertThrows(DumpException.class, () -> FileLocks.parseLine(8, "1: POSIX ADVISORY"));
    assertEquals("fd 8: cannot parse the lock line '1: POSIX ADVISORY'", junk.getMessage());
  }
}
