package dev.stasis.dump.files;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.List;
import org.junit.jupiter.api.Test;

class NetworkLockTest {
  /**
   * iptables-restore heads its failure with its version and gives the reason on the next line
   * ("line 3: CHAIN_DEL failed (Device or resource busy): chain CRIU"): the failure names both.
   */
  @Test
  void aToolsFailureKeepsTheReasonAfterItsHeading() {
    String failure =
        NetworkLock.run(
            List.of(
                "sh",
                "-c",
                "echo 'iptables-restore v1.8.9 (nf_tables): '; echo 'line 3: CHAIN_DEL failed'; exit 4"),
            null);
    assertEquals("exit 4: iptables-restore v1.8.9 (nf_tables): line 3: CHAIN_DEL failed", failure);
  }

  @Test
  void aToolReadsItsInputAndSucceeds() {
    assertNull(NetworkLock.run(List.of("sh", "-c", "read l && test \"$l\" = COMMIT"), "COMMIT\n"));
  }
}
