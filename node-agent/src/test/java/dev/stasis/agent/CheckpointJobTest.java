package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * The job's deadline: what the engine and the sinks see as cancelled; what its hold reports as
 * ParentStored.
 */
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

  /**
   * A held pre-copy's ParentStored says which containers have a parent set: one without a live copy
   * has none, and the target must not look for it (RestoreStagingIT), so the report names it and
   * says its pages come at the cut; with none at all it says so instead of "0 bytes stored".
   */
  @Test
  void theHoldNamesTheContainersWithoutAParentSet() {
    assertEquals(
        "parent image sets stored (4096 bytes)",
        new PodDump.ParentSets(4096, java.util.List.of("app", "side"), java.util.List.of())
            .summary());
    assertEquals(
        "parent image sets stored (4096 bytes) for app; side has none (live copy unavailable):"
            + " its pages are copied at the cut",
        new PodDump.ParentSets(4096, java.util.List.of("app"), java.util.List.of("side"))
            .summary());
    assertEquals(
        "parent image sets stored (4096 bytes) for app; side, db have none (live copy"
            + " unavailable): their pages are copied at the cut",
        new PodDump.ParentSets(4096, java.util.List.of("app"), java.util.List.of("side", "db"))
            .summary());
    assertEquals(
        "no container has a parent image set (live copy unavailable): every page is copied at"
            + " the cut",
        new PodDump.ParentSets(0, java.util.List.of(), java.util.List.of("app", "side")).summary());
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
