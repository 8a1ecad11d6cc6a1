package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The job's deadline: what the engine and the sinks see as cancelled. */
class CheckpointJobTest {
  /**
   * Issue 14: the Checkpoint's timeoutSeconds, counted from its dispatch, is the agent's freeze
   * deadline: past it the job reads as cancelled, which its sinks pass to the store (a blocked
   * upload fails at once, TrackingSinkTest) and PodDump releases the frozen containers
   * (ContainerDumpIT#cancelledDumpWithTheRealEngineLeavesTheContainerRunning).
   */
  @Test
  void timeoutSecondsFromTheDispatchIsTheFreezeDeadline() {
    assertFalse(job(java.time.Instant.now().minusSeconds(5), 60).cancelled(), "within");
    assertTrue(job(java.time.Instant.now().minusSeconds(61), 60).cancelled(), "past the deadline");
    CheckpointJob deleted = job(java.time.Instant.now(), 60);
    deleted.cancel();
    assertTrue(deleted.cancelled(), "deleted");
  }

  static CheckpointJob job(java.time.Instant dispatchedAt, int timeoutSeconds) {
    dev.stasis.crds.Checkpoint c = new dev.stasis.crds.Checkpoint();
    c.setMetadata(
        new io.fabric8.kubernetes.api.model.ObjectMetaBuilder()
            .withNamespace("ns")
            .withName("c")
            .addToAnnotations(dev.stasis.crds.Labels.DISPATCHED_AT, dispatchedAt.toString())
            .build());
    dev.stasis.crds.CheckpointSpec spec = new dev.stasis.crds.CheckpointSpec();
    spec.setPodName("web");
    spec.setTimeoutSeconds(timeoutSeconds);
    c.setSpec(spec);
    return new CheckpointJob(c, null, null, null, null, null, "n1", () -> {});
  }
}
