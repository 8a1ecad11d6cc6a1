package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.compel.SeizeException;
import dev.stasis.dump.DumpException;
import org.junit.jupiter.api.Test;

/** Which engine refusals the job cuts again for: only a not-yet-reaped child. */
class CheckpointJobTest {
  @Test
  void onlyAZombieDescendantIsTransient() {
    assertTrue(
        CheckpointJob.transientZombie(
            new DumpException(
                "dump failed",
                new SeizeException("descendant pid 17407 of 17402 (sleep) is a zombie"))));
    assertFalse(
        CheckpointJob.transientZombie(new DumpException("PID 12 is a zombie (it has exited)")),
        "the container's init itself has exited: not transient");
    assertFalse(
        CheckpointJob.transientZombie(new DumpException("fd 3 of PID 12 is a socket")),
        "a limitation is not retried");
  }
}
