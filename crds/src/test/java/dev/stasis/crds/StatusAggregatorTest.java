package dev.stasis.crds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.fabric8.kubernetes.api.model.Condition;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

class StatusAggregatorTest {
  static final Instant T0 = Instant.parse("2026-11-28T04:00:00Z");
  static final Instant T1 = Instant.parse("2026-11-28T04:00:05Z");
  static final Instant T2 = Instant.parse("2026-11-28T04:00:09Z");

  static Condition cond(CheckpointStatus s, String type) {
    return StatusAggregator.condition(s, type);
  }

  @Test
  void validationFailureIsTerminalWithReasonOnEveryCondition() {
    CheckpointStatus s =
        StatusAggregator.next(
            null, 1, Transition.failed(Reason.PodNotFound, "pod default/web not found"), T0);
    assertEquals(Phase.Failed, s.phase);
    assertEquals(1L, s.observedGeneration);
    assertEquals("False", cond(s, "Accepted").getStatus());
    assertEquals("PodNotFound", cond(s, "Accepted").getReason());
    assertEquals("False", cond(s, "Ready").getStatus());
    assertEquals("True", cond(s, "Failed").getStatus());
    assertEquals("PodNotFound", cond(s, "Failed").getReason());
    assertEquals("pod default/web not found", s.message);
    assertEquals("2026-11-28T04:00:00Z", s.completionTime);
    assertNull(s.startTime, "nothing started");
    assertEquals(1L, cond(s, "Failed").getObservedGeneration());
  }

  @Test
  void happyPathKeepsFactsAndTransitionTimes() {
    CheckpointStatus s =
        StatusAggregator.next(
            null,
            1,
            Transition.to(Phase.Pending, Reason.Dispatched, "dispatched to node n1")
                .node("n1", "uid-1")
                .containers(List.of(new CheckpointStatus.ContainerRef("app", "containerd://ab"))),
            T0);
    assertEquals("True", cond(s, "Accepted").getStatus());
    assertEquals("Dispatched", cond(s, "Ready").getReason());
    s = StatusAggregator.next(s, 1, Transition.to(Phase.Running, Reason.Dumping, "dumping"), T1);
    assertEquals("n1", s.nodeName, "facts survive transitions that do not mention them");
    assertEquals("uid-1", s.podUID);
    assertEquals("2026-11-28T04:00:05Z", s.startTime);
    assertEquals(
        "2026-11-28T04:00:00Z",
        cond(s, "Ready").getLastTransitionTime(),
        "Ready stayed False: its transition time must not move");
    CheckpointStatus.Durations d = new CheckpointStatus.Durations();
    d.freezeMillis = 3L;
    d.dumpMillis = 40L;
    s =
        StatusAggregator.next(
            s,
            1,
            Transition.to(Phase.Completed, Reason.Completed, "stored 4096 bytes")
                .location("s3://b/ns/c/uid")
                .sizeBytes(4096)
                .durations(d),
            T2);
    assertEquals(Phase.Completed, s.phase);
    assertEquals("True", cond(s, "Ready").getStatus());
    assertEquals("2026-11-28T04:00:09Z", cond(s, "Ready").getLastTransitionTime());
    assertEquals("False", cond(s, "Failed").getStatus());
    assertEquals(4096L, s.sizeBytes);
    assertEquals(40L, s.durations.dumpMillis);
    assertEquals("2026-11-28T04:00:05Z", s.startTime);
    assertEquals("2026-11-28T04:00:09Z", s.completionTime);
    assertEquals(3, s.conditions.size());
  }

  @Test
  void terminalPhasesAreSticky() {
    CheckpointStatus failed =
        StatusAggregator.next(
            null, 1, Transition.failed(Reason.AgentUnavailable, "no agent on n1"), T0);
    assertSame(
        failed,
        StatusAggregator.next(
            failed, 1, Transition.to(Phase.Completed, Reason.Completed, "late agent"), T1));
  }

  @Test
  void phasesNeverGoBackwards() {
    CheckpointStatus up =
        StatusAggregator.next(null, 1, Transition.to(Phase.Uploading, Reason.Uploading, "u"), T0);
    assertThrows(
        IllegalStateException.class,
        () -> StatusAggregator.next(up, 1, Transition.to(Phase.Running, Reason.Dumping, "d"), T1));
  }

  @Test
  void inputStatusIsNotMutated() {
    CheckpointStatus p =
        StatusAggregator.next(
            null, 1, Transition.to(Phase.Pending, Reason.Dispatched, "d").node("n", "u"), T0);
    StatusAggregator.next(p, 2, Transition.failed(Reason.SpecChanged, "edited"), T1);
    assertEquals(Phase.Pending, p.phase);
    assertEquals(1L, p.observedGeneration);
    assertEquals("Dispatched", cond(p, "Ready").getReason());
  }

  /**
   * Issue 14: container 1 of a two-container pod reaching Uploading made container 2's progress
   * (Running) a step back, and the aggregator threw. The pod's phase is now derived from both.
   */
  @Test
  void twoContainersProgressIndependentlyUnderOnePodPhase() {
    CheckpointStatus s =
        StatusAggregator.next(
            null,
            1,
            Transition.to(Phase.Pending, Reason.Dispatched, "dispatched")
                .containers(
                    List.of(
                        new CheckpointStatus.ContainerRef("a", "containerd://aa"),
                        new CheckpointStatus.ContainerRef("b", "containerd://bb"))),
            T0);
    s = StatusAggregator.next(s, 1, Transition.to(Phase.Running, Reason.Claimed, "claimed"), T0);
    s =
        StatusAggregator.next(
            s,
            1,
            Transition.to(Phase.Uploading, Reason.Uploading, "a: finishing upload")
                .container("a", CheckpointStatus.ContainerPhase.Uploading, 100L),
            T1);
    assertEquals(Phase.Running, s.phase, "b has not been dumped yet");
    s =
        StatusAggregator.next(
            s,
            1,
            Transition.to(Phase.Running, Reason.Dumping, "b: pages")
                .container("b", CheckpointStatus.ContainerPhase.Dumping, 50L),
            T1);
    assertEquals(Phase.Running, s.phase);
    assertEquals(150L, s.sizeBytes, "the pod's size is the sum of its containers'");
    assertEquals(CheckpointStatus.ContainerPhase.Uploading, s.containers.get(0).phase);
    assertEquals(CheckpointStatus.ContainerPhase.Dumping, s.containers.get(1).phase);
    s =
        StatusAggregator.next(
            s,
            1,
            Transition.to(Phase.Uploading, Reason.Uploading, "b: finishing upload")
                .container("b", CheckpointStatus.ContainerPhase.Uploading, 70L),
            T2);
    assertEquals(Phase.Uploading, s.phase, "every container is uploading");
    s =
        StatusAggregator.next(
            s,
            1,
            Transition.to(Phase.Running, Reason.Dumping, "late progress of a")
                .container("a", CheckpointStatus.ContainerPhase.Dumping, 90L),
            T2);
    assertEquals(Phase.Uploading, s.phase, "a late progress report is not a step back");
    assertEquals(CheckpointStatus.ContainerPhase.Uploading, s.containers.get(0).phase);
    assertEquals(170L, s.sizeBytes);
    assertEquals("containerd://bb", s.containers.get(1).containerID, "IDs are kept");
  }

  @Test
  void completionRecordsEachContainersCheckpointId() {
    CheckpointStatus s =
        StatusAggregator.next(
            null,
            1,
            Transition.to(Phase.Running, Reason.Claimed, "claimed")
                .containers(
                    List.of(
                        new CheckpointStatus.ContainerRef("a", "containerd://aa"),
                        new CheckpointStatus.ContainerRef("b", "containerd://bb"))),
            T0);
    assertNull(s.containers.get(0).checkpointID, "no id before anything is stored");
    s =
        StatusAggregator.next(
            s,
            1,
            Transition.to(Phase.Completed, Reason.Completed, "stored")
                .checkpointIds(java.util.Map.of("a", "id-of-a", "b", "id-of-b")),
            T1);
    assertEquals("id-of-a", s.containers.get(0).checkpointID);
    assertEquals("id-of-b", s.containers.get(1).checkpointID);
    assertEquals(CheckpointStatus.ContainerPhase.Stored, s.containers.get(1).phase);
  }

  @Test
  void restorableConditionFollowsTheEnginesWarnings() {
    CheckpointStatus s =
        StatusAggregator.next(
            null,
            1,
            Transition.to(Phase.Completed, Reason.Completed, "stored")
                .restorability(List.of("container 'a': own pid namespace")),
            T0);
    assertEquals("True", cond(s, "Ready").getStatus(), "the images are complete");
    assertEquals("False", cond(s, "Restorable").getStatus());
    assertEquals("NotRestorable", cond(s, "Restorable").getReason());
    assertEquals("container 'a': own pid namespace", cond(s, "Restorable").getMessage());

    CheckpointStatus ok =
        StatusAggregator.next(
            null,
            1,
            Transition.to(Phase.Completed, Reason.Completed, "stored").restorability(List.of()),
            T0);
    assertEquals("True", cond(ok, "Restorable").getStatus());
    assertEquals("Restorable", cond(ok, "Restorable").getReason());

    CheckpointStatus refused =
        StatusAggregator.next(
            null,
            1,
            Transition.failed(Reason.NotRestorable, "refused to kill")
                .restorability(List.of("own mnt namespace")),
            T0);
    assertEquals(Phase.Failed, refused.phase);
    assertEquals("NotRestorable", cond(refused, "Failed").getReason());
    assertEquals("False", cond(refused, "Restorable").getStatus());
    assertNull(
        cond(
            StatusAggregator.next(null, 1, Transition.to(Phase.Running, Reason.Claimed, "x"), T0),
            "Restorable"),
        "unknown until the engine said");
  }

  @Test
  void parentStoredIsSetOnceAndKeptUntilTheCutCompletes() {
    CheckpointStatus s =
        StatusAggregator.next(null, 1, Transition.to(Phase.Running, Reason.Claimed, "claimed"), T0);
    assertNull(cond(s, StatusAggregator.PARENT_STORED), "only a held pre-copy reports it");
    s =
        StatusAggregator.next(
            s,
            1,
            Transition.to(Phase.Running, Reason.ParentStored, "holding")
                .parentStored("2026-11-28T04:00:04.125Z", 12_345),
            T1);
    assertEquals(Phase.Running, s.phase);
    assertEquals("2026-11-28T04:00:04.125Z", s.parentStoredAt);
    Condition c = cond(s, StatusAggregator.PARENT_STORED);
    assertEquals("True", c.getStatus());
    assertEquals("ParentStored", c.getReason());
    assertEquals(
        "parent image sets stored (12345 bytes) while the pod runs; the final cut waits for"
            + " stasis.dev/final-freeze: go",
        c.getMessage());
    assertEquals("2026-11-28T04:00:05Z", c.getLastTransitionTime());
    assertEquals("False", cond(s, "Ready").getStatus(), "a parent is not a checkpoint");
    s =
        StatusAggregator.next(
            s,
            1,
            Transition.to(Phase.Running, Reason.Dumping, "final cut")
                .container("app", CheckpointStatus.ContainerPhase.Frozen, null),
            T2);
    s = StatusAggregator.next(s, 1, Transition.to(Phase.Completed, Reason.Completed, "done"), T2);
    assertEquals("2026-11-28T04:00:04.125Z", s.parentStoredAt, "later transitions keep it");
    assertEquals("True", cond(s, StatusAggregator.PARENT_STORED).getStatus());
    assertEquals(
        "2026-11-28T04:00:05Z", cond(s, StatusAggregator.PARENT_STORED).getLastTransitionTime());
    assertEquals("True", cond(s, "Ready").getStatus());
  }

  /** The agent's summary (which containers have no parent set) replaces the plain bytes. */
  @Test
  void parentStoredCarriesTheAgentsSummary() {
    CheckpointStatus s =
        StatusAggregator.next(
            null,
            1,
            Transition.to(Phase.Running, Reason.ParentStored, "holding")
                .parentStored(
                    "2026-11-28T04:00:04.125Z",
                    0,
                    "no container has a parent image set (live copy unavailable): every page is"
                        + " copied at the cut"),
            T1);
    Condition c = cond(s, StatusAggregator.PARENT_STORED);
    assertEquals("True", c.getStatus(), "still stored: the migration goes on");
    assertEquals(
        "no container has a parent image set (live copy unavailable): every page is copied at the"
            + " cut; the pod runs; the final cut waits for stasis.dev/final-freeze: go",
        c.getMessage());
  }

  @Test
  void holdFinalFreezeDefaultsOffAndTheGoAnnotationIsExact() {
    CheckpointSpec spec = new CheckpointSpec();
    assertEquals(false, spec.effectiveHoldFinalFreeze());
    spec.setHoldFinalFreeze(null);
    assertEquals(false, spec.effectiveHoldFinalFreeze(), "absent means today's checkpoint");
    spec.setHoldFinalFreeze(true);
    assertEquals(true, spec.effectiveHoldFinalFreeze());
    Checkpoint cr = new Checkpoint();
    cr.setMetadata(new io.fabric8.kubernetes.api.model.ObjectMeta());
    assertEquals(false, Labels.finalFreezeGo(cr));
    cr.getMetadata().setAnnotations(new java.util.HashMap<>());
    cr.getMetadata().getAnnotations().put(Labels.FINAL_FREEZE, "wait");
    assertEquals(false, Labels.finalFreezeGo(cr));
    cr.getMetadata().getAnnotations().put("stasis.dev/final-freeze", "go");
    assertEquals(true, Labels.finalFreezeGo(cr));
  }
}
